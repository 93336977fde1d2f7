#!/usr/bin/env bash
# Local stand-ins for the three official images the compose stack pulls (apache/kafka,
# postgres, python), for a Docker host that reaches no image registry, such as CI here.
# Each is built from the Debian base image that deploy/engine.sh imports, and is
# configured the way deploy/docker-compose.yml configures the official one.
#
#   build.sh          build the missing stand-ins (BUILD_ALL=1: rebuild them all)
#   build.sh env      print the deploy/.env lines that make compose use them
#
# The official images stay compose's defaults; docs/operations.md, "Compose in CI", says
# what the stand-ins prove and what they cannot.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
DEPLOY_DIR=$(cd "$SCRIPT_DIR/.." && pwd -P)
KAFKA_VERSION=${TL_KAFKA_VERSION:-4.3.1}
BASE_IMAGE=${TL_DEBIAN_BASE_IMAGE:-trial-ledger/debian:bookworm}
# name, the compose variable that selects it, its tag
IMAGES=(
  "kafka TL_KAFKA_IMAGE trial-ledger/kafka-standin:$KAFKA_VERSION"
  "postgres TL_POSTGRES_IMAGE trial-ledger/postgres-standin:15"
  "python TL_PYTHON_IMAGE trial-ledger/python-standin:3.11"
)

log() { printf '[standins] %s\n' "$*" >&2; }

# What each build needs beside its own folder: the Kafka jars that deploy/local resolves
# from Maven Central (into $TL_CACHE_DIR, reused), the host's CA bundle for pip.
add_context() {
  local context=$2
  case $1 in
    kafka)
      local libs
      libs=$("$DEPLOY_DIR/local/infra.sh" kafka-libs)
      cp -r "$libs" "$context/libs"
      cp "$DEPLOY_DIR/local/kafka/tools-log4j2.xml" "$context/"
      ;;
    python) cp /etc/ssl/certs/ca-certificates.crt "$context/" ;;
    postgres) ;;
  esac
}

build_one() {
  local name=$1 tag=$2 context started=$SECONDS
  if [[ -z ${BUILD_ALL:-} ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    return 0
  fi
  context=$(mktemp -d "${TMPDIR:-/tmp}/tl-standin-$name.XXXXXX")
  cp -r "$SCRIPT_DIR/$name/." "$context/"
  add_context "$name" "$context"
  log "building $tag"
  docker build --quiet --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$context" >/dev/null
  rm -rf "$context"
  log "$tag: $((SECONDS - started))s"
}

cmd_build() {
  "$DEPLOY_DIR/engine.sh" base
  local entry
  for entry in "${IMAGES[@]}"; do
    read -r name _ tag <<<"$entry"
    build_one "$name" "$tag"
  done
}

cmd_env() {
  local entry
  for entry in "${IMAGES[@]}"; do
    read -r _ variable tag <<<"$entry"
    printf '%s=%s\n' "$variable" "$tag"
  done
  # the witness image's base, Debian itself
  printf 'TL_DEBIAN_IMAGE=%s\n' "$BASE_IMAGE"
}

case ${1:-build} in
  build) cmd_build ;;
  env) cmd_env ;;
  *) echo "usage: $0 [build|env]" >&2; exit 2 ;;
esac
