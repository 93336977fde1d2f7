#!/usr/bin/env bash
# A Docker engine for CI and for hosts that have none, made from Debian's packages and
# the Go module proxy only (no image registry needs to answer). docs/operations.md,
# "Compose in CI".
#
#   engine.sh start    where `docker info` does not answer: install Debian's docker.io
#                      (as root) and start dockerd in the background (log:
#                      $TL_ENGINE_LOG); then the Compose v2 CLI plugin and the Debian base
#                      image. Idempotent: what is there is kept.
#   engine.sh base     only the base image (debootstrap of Debian bookworm, imported as
#                      $TL_DEBIAN_BASE_IMAGE; its tarball cached in $TL_CACHE_DIR)
#   engine.sh status   exit 0 when the engine and the compose plugin answer
#
# The engine is left running: `make down` and the tests stop their containers, not it.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd -P)
CACHE_DIR=$(realpath -m -- "${TL_CACHE_DIR:-$REPO_ROOT/.cache}")
# The newest Compose v2 release; v2.31+ no longer has v2.29's data race when `up` recreates
# a service with dependents (docker/compose#12186, fixed by #12322). docs/operations.md.
COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
ENGINE_LOG=${TL_ENGINE_LOG:-/var/log/trial-ledger-dockerd.log}
BASE_IMAGE=${TL_DEBIAN_BASE_IMAGE:-trial-ledger/debian:bookworm}
BASE_TARBALL=$CACHE_DIR/debian-bookworm-rootfs.tar
# The machine's own Debian mirror (deb.debian.org where sources.list says nothing else).
MIRROR=${TL_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' \
  /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

log() { printf '[engine] %s\n' "$*" >&2; }
die() { printf '[engine] ERROR: %s\n' "$*" >&2; exit 1; }

# Each stage says how long it took: CI's budget is read from these lines.
timed() {
  local stage=$1 started=$SECONDS
  shift
  "$@"
  log "$stage: $((SECONDS - started))s"
}

apt_install() {
  [[ $EUID -eq 0 ]] || die "missing $*; install it (apt-get install -y $*) or re-run as root"
  log "installing Debian packages: $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() { docker info >/dev/null 2>&1; }

# The first storage driver that starts: overlay2 where the kernel and the backing file
# system allow it, else vfs (slow, but works everywhere).
start_dockerd() {
  command -v dockerd >/dev/null || apt_install docker.io iptables
  local driver
  for driver in overlay2 vfs; do
    log "starting dockerd (storage driver $driver), log in $ENGINE_LOG"
    # setsid: the engine outlives this script and the CI step that started it
    setsid dockerd --storage-driver="$driver" >>"$ENGINE_LOG" 2>&1 </dev/null &
    local pid=$! waited
    for waited in $(seq 1 60); do
      engine_answers && { log "dockerd answers (pid $pid, after ${waited}s)"; return 0; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "dockerd with $driver did not answer; last lines of its log:"
    tail -n 5 "$ENGINE_LOG" >&2 || true
  done
  die "dockerd did not start with overlay2 or vfs (see $ENGINE_LOG)"
}

# Compose v2, built once per version into the cache (Go's own build cache makes a rebuild
# after `rm -rf .cache` quick too), installed as the docker CLI plugin. Built inside its
# module's source from the module proxy, as upstream's Makefile builds it: its go.mod has
# `exclude` directives (from v2.35.1 on), which `go install module/cmd@version` refuses.
install_compose() {
  local bin=$CACHE_DIR/compose/$COMPOSE_VERSION/docker-compose src
  if [[ ! -x $bin ]]; then
    PATH=$PATH:/usr/local/go/bin
    command -v go >/dev/null || die "Go is needed to build the compose plugin"
    log "building $COMPOSE_MODULE@$COMPOSE_VERSION into ${bin%/*}"
    go mod download "$COMPOSE_MODULE@$COMPOSE_VERSION"
    src=$(go env GOMODCACHE)/$COMPOSE_MODULE@$COMPOSE_VERSION
    mkdir -p "${bin%/*}"
    # the version it reports (a build from source leaves it "dev")
    (cd "$src" && go build -trimpath -o "$bin" \
      -ldflags "-X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" ./cmd)
  fi
  cmp -s "$bin" "$PLUGIN" 2>/dev/null || install -D -m 0755 "$bin" "$PLUGIN"
  docker compose version >&2
}

# Docker Hub is out of reach here: the base image is a debootstrap of Debian bookworm from
# the machine's apt mirror, imported as an image; the rootfs tarball is cached.
cmd_base() {
  docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return 0
  if [[ ! -s $BASE_TARBALL ]]; then
    command -v debootstrap >/dev/null || apt_install debootstrap
    local root
    root=$(mktemp -d "${TMPDIR:-/tmp}/tl-debootstrap.XXXXXX")
    log "debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase bookworm "$root" "$MIRROR" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    mkdir -p "$CACHE_DIR"
    tar -C "$root" -cf "$BASE_TARBALL.tmp" .
    mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
    rm -rf "$root"
  fi
  docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' \
    "$BASE_TARBALL" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

cmd_start() {
  engine_answers || timed "engine install and start" start_dockerd
  timed "compose plugin" install_compose
  timed "debian base image" cmd_base
}

case ${1:-} in
  start) cmd_start ;;
  base) cmd_base ;;
  status) engine_answers && docker compose version >/dev/null 2>&1 ;;
  *) echo "usage: $0 start|base|status" >&2; exit 2 ;;
esac
