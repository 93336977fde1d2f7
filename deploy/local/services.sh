#!/usr/bin/env bash
# Runs the Trial Ledger services as local processes beside deploy/local/infra.sh.
#   services.sh start | stop | status
# Each service that exists (services/<name>/__main__.py) runs in the background with
# its log in $TL_STATE_DIR/services/<name>.log; start waits until /health answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${TL_STATE_DIR:-$ROOT/.local}"
RUN="$STATE/services"
PY="${TL_PYTHON:-$ROOT/.venv/bin/python}"
# shellcheck source=deploy/local/processes.sh
. "$ROOT/deploy/local/processes.sh"

services() {  # the services that can run: those with a __main__.py
  for main in "$ROOT"/services/*/__main__.py; do
    [ -f "$main" ] && basename "$(dirname "$main")"
  done
}

port_of() {  # the HTTP port a service listens on (same defaults as shared/kernel/settings.py)
  "$PY" -c "import os,sys; from shared.kernel.settings import DEFAULT_PORTS as P; \
n=sys.argv[1]; print(os.environ.get(f'TL_{n.upper()}_HTTP_PORT', P[n]))" "$1"
}

running() {  # pid of a live service process, or nothing
  alive "$RUN/$1.pid" "services.$1"
}

start_one() {
  local name="$1" port
  port="$(port_of "$name")"
  if running "$name" >/dev/null; then
    echo "$name: already running"
  else
    # Detached from this shell's terminal and pipes, so that `make up | tee` returns.
    setsid nohup "$PY" -m "services.$name" </dev/null >>"$RUN/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
  fi
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      echo "$name: http://127.0.0.1:$port  (API docs: http://127.0.0.1:$port/docs)"
      return 0
    fi
    running "$name" >/dev/null || break
    sleep 0.5
  done
  echo "$name: did not become healthy; last lines of $RUN/$name.log:" >&2
  tail -n 30 "$RUN/$name.log" >&2
  return 1
}

stop_one() {
  stop_pidfile "$RUN/$1.pid" "services.$1" "$1" 30
}

main() {
  mkdir -p "$RUN"
  cd "$ROOT"
  [ -f "$STATE/env" ] && . "$STATE/env"
  [ -f "$STATE/keys.env" ] && . "$STATE/keys.env"
  # the witness that cosigns the ledger's checkpoints (deploy/local/witness.sh), if started
  [ -f "$STATE/witness.env" ] && . "$STATE/witness.env"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
  case "${1:-}" in
    start) for s in $(services); do start_one "$s"; done ;;
    stop) for s in $(services); do stop_one "$s"; done ;;
    status)
      for s in $(services); do
        if pid="$(running "$s")"; then echo "$s: running pid=$pid"; else echo "$s: stopped"; fi
      done ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
  esac
}

main "$@"
