#!/usr/bin/env bash
# The ledger's outside witness as a local process: litewitness (filippo.io/torchwood, a
# c2sp.org/tlog-witness) with its own SQLite store and its Ed25519 key in an ssh-agent of
# its own, apart from the ledger's database. docs/operations.md, "The witness".
#
#   witness.sh install          build litewitness and witnessctl into $TL_CACHE_DIR/bin
#   witness.sh start            make the key once, start ssh-agent and litewitness, and
#                               write $TL_STATE_DIR/witness.env (TL_WITNESS_URL, _VKEY)
#   witness.sh register [URL]   have it witness every study's ledger: each origin and its
#                               checkpoint vkeys, read from projections' public GET
#                               /checkpoints and, for each study of $TL_STUDIES, GET
#                               /studies/<id>/checkpoints (URL: the projections service,
#                               default $TL_PROJECTIONS_URL or :8105)
#   witness.sh stop | status
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd -P)
STATE_DIR=$(realpath -m -- "${TL_STATE_DIR:-$REPO_ROOT/.local}")
CACHE_DIR=$(realpath -m -- "${TL_CACHE_DIR:-$REPO_ROOT/.cache}")
TORCHWOOD=filippo.io/torchwood@v0.6.1
BIN_DIR=$CACHE_DIR/bin
PORT=${TL_WITNESS_PORT:-7380}
NAME=${TL_WITNESS_NAME:-trial-ledger.local/witness}

DIR=$STATE_DIR/witness
KEY=$DIR/witness.key
DB=$DIR/litewitness.db
LOG=$DIR/litewitness.log
AGENT_PID=$DIR/ssh-agent.pid
WITNESS_PID=$DIR/litewitness.pid
ENV_FILE=$STATE_DIR/witness.env
# Unix socket paths are limited to ~107 bytes (as for PostgreSQL's in infra.sh).
SOCK=$DIR/agent.sock
((${#SOCK} < 100)) || SOCK=/tmp/tl-witness-$(printf '%s' "$STATE_DIR" | sha256sum | cut -c1-12).sock

log() { printf '[witness] %s\n' "$*" >&2; }
die() { printf '[witness] ERROR: %s\n' "$*" >&2; exit 1; }

# shellcheck source=deploy/local/processes.sh
. "$SCRIPT_DIR/processes.sh"

# Built from the Go module proxy once per version (CI and a new machine run this too):
# nothing installed by hand is relied on.
cmd_install() {
  local marker=$BIN_DIR/.torchwood
  if [[ -x $BIN_DIR/litewitness && -x $BIN_DIR/witnessctl && -f $marker \
    && $(<"$marker") == "$TORCHWOOD" ]]; then
    return 0
  fi
  PATH=$PATH:/usr/local/go/bin
  command -v go >/dev/null || die "Go is needed to build litewitness (https://go.dev/dl/)"
  log "building litewitness and witnessctl ($TORCHWOOD) into $BIN_DIR"
  mkdir -p "$BIN_DIR"
  GOBIN=$BIN_DIR go install "${TORCHWOOD%@*}/cmd/litewitness@${TORCHWOOD#*@}" \
    "${TORCHWOOD%@*}/cmd/witnessctl@${TORCHWOOD#*@}"
  printf '%s\n' "$TORCHWOOD" >"$marker"
}

start_agent() {
  alive "$AGENT_PID" "ssh-agent" >/dev/null && return 0
  rm -f "$SOCK"
  setsid ssh-agent -D -a "$SOCK" </dev/null >>"$DIR/ssh-agent.log" 2>&1 &
  echo $! >"$AGENT_PID"
  for _ in $(seq 1 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
  [[ -S $SOCK ]] || die "ssh-agent did not open $SOCK"
  SSH_AUTH_SOCK=$SOCK ssh-add -q "$KEY"
}

cmd_start() {
  cmd_install
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  # The witness's key: made here once, kept in the state directory, never in the repository.
  [[ -f $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f "$KEY"
  start_agent
  if ! alive "$WITNESS_PID" litewitness >/dev/null; then
    local fingerprint
    fingerprint=$(ssh-keygen -l -E sha256 -f "$KEY.pub" | cut -d' ' -f2)
    setsid "$BIN_DIR/litewitness" -listen "127.0.0.1:$PORT" -name "$NAME" -db "$DB" \
      -ssh-agent "$SOCK" -key "$fingerprint" </dev/null >>"$LOG" 2>&1 &
    echo $! >"$WITNESS_PID"
  fi
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    alive "$WITNESS_PID" litewitness >/dev/null || { tail -n 20 "$LOG" >&2; die "litewitness exited"; }
    sleep 0.1
  done
  # its own statement of its verifier key, as it logs it at start
  local vkey
  vkey=$(grep -o 'vkey=[^ ]*' "$LOG" | tail -n 1 | cut -d= -f2- | tr -d '"')
  [[ -n $vkey ]] || die "litewitness did not log its verifier key (see $LOG)"
  (umask 077 && printf 'export TL_WITNESS_URL=http://127.0.0.1:%s\nexport TL_WITNESS_VKEY=%s\n' \
    "$PORT" "$vkey" >"$ENV_FILE")
  echo "witness: http://127.0.0.1:$PORT  vkey $vkey"
}

# Idempotent: each log is added once (witnessctl never removes one: a re-added log could
# be made to sign a split view), each checkpoint vkey once.
register_ledger() {  # the ledger whose public checkpoints are at $1
  local published origin vkey known
  published=$(curl -fsS "$1?limit=1") || die "cannot read $1"
  origin=$(printf '%s' "$published" | python3 -c 'import json,sys; print(json.load(sys.stdin)["origin"])')
  known=$("$BIN_DIR/witnessctl" list-logs -db "$DB")
  if ! grep -qF "\"origin\":\"$origin\"" <<<"$known"; then
    "$BIN_DIR/witnessctl" add-log -db "$DB" -origin "$origin"
  fi
  for vkey in $(printf '%s' "$published" | python3 -c \
    'import json,sys; print("\n".join(json.load(sys.stdin)["vkeys"]))'); do
    grep -qF "$vkey" <<<"$known" || "$BIN_DIR/witnessctl" add-key -db "$DB" -origin "$origin" -key "$vkey"
  done
  echo "witness: witnesses $origin"
}

# The first study's ledger (unprefixed, as before studies were named), then every served
# study's (TL_STUDIES, as the services are given it; the first study's again: idempotent).
cmd_register() {
  local url=${1:-${TL_PROJECTIONS_URL:-http://127.0.0.1:8105}} studies=${TL_STUDIES:-} study
  register_ledger "$url/checkpoints"
  for study in ${studies//,/ }; do
    register_ledger "$url/studies/$study/checkpoints"
  done
}

cmd_status() {
  local pid
  if pid=$(alive "$WITNESS_PID" litewitness); then
    echo "witness   running  pid=$pid port=$PORT"
  else
    echo "witness   stopped"
    return 3
  fi
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  register) shift; cmd_register "$@" ;;
  stop) stop_pidfile "$WITNESS_PID" litewitness litewitness 5; stop_pidfile "$AGENT_PID" ssh-agent ssh-agent 5 ;;
  status) cmd_status ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
