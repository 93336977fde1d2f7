#!/usr/bin/env bash
# The docker compose stack for `make up` / `make down` on a host with a Docker engine.
#   compose.sh up     create deploy/.env with random passwords if it is missing, build the
#                     image, start everything and wait until every service is healthy
#   compose.sh down   stop and remove the containers; the named volumes (PostgreSQL,
#                     Kafka, keys) are kept: nothing is lost
set -euo pipefail

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ENV_FILE=$DEPLOY_DIR/.env
SERVICES=(identity:8100 enrollment:8101 infusion:8102 adverse_events:8103 assessments:8104
  projections:8105 witness:7380)

die() { printf 'compose.sh: %s\n' "$*" >&2; exit 1; }

compose() { docker compose -f "$DEPLOY_DIR/docker-compose.yml" "$@"; }

secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }

# Only the template is in the repository; the passwords are made here, on the host that
# keeps them, and written with mode 0600.
ensure_env_file() {
  [[ -f $ENV_FILE ]] && return 0
  (
    umask 077
    sed -e "s/^TL_PG_SUPERUSER_PASSWORD=\$/TL_PG_SUPERUSER_PASSWORD=$(secret)/" \
      -e "s/^TL_PG_PASSWORD=\$/TL_PG_PASSWORD=$(secret)/" \
      "$DEPLOY_DIR/.env.example" >"$ENV_FILE.tmp"
  )
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  echo "created $ENV_FILE with random passwords: keep a copy with your backups"
}

cmd_up() {
  docker compose version >/dev/null 2>&1 \
    || die "the docker compose plugin is missing; install it, or run TL_DEPLOY=local make up"
  ensure_env_file
  # the witness image copies host-built binaries (its build cannot reach the Go proxy)
  "$DEPLOY_DIR/local/witness.sh" install
  compose up --detach --build --wait
  local entry name port
  for entry in "${SERVICES[@]}"; do
    name=${entry%%:*} port=${entry##*:}
    echo "$name: http://$(compose port "$name" "$port")  (API docs: /docs)"
  done
  echo "First time? Create the first administrator:"
  echo "  docker compose -f deploy/docker-compose.yml exec identity python -m services.identity \\"
  echo "    bootstrap-admin --user-id ... --name '...' --site ..."
}

cmd_down() {
  # Without deploy/.env no stack was started from here, and compose could not even read
  # the file (its passwords are required).
  if [[ ! -f $ENV_FILE ]]; then
    echo "no $ENV_FILE: no compose stack to stop"
    return 0
  fi
  compose down
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
