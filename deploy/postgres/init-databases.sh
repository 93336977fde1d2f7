#!/usr/bin/env bash
# The compose stack's `databases` job: roles and databases, on every `up` (idempotent).
# libpq reads PGHOST, PGUSER (the superuser), PGPASSWORD and PGDATABASE from the
# environment; the SQL reads TL_PG_USER, TL_PG_PASSWORD and TL_DATABASES.
set -euo pipefail

: "${TL_PG_USER:?TL_PG_USER is not set}"
: "${TL_PG_PASSWORD:?TL_PG_PASSWORD is not set (deploy/.env)}"
: "${TL_DATABASES:?TL_DATABASES is not set}"

# The password is spliced into database URLs, where only URL-safe characters survive.
if [[ ! $TL_PG_PASSWORD =~ ^[A-Za-z0-9._~-]+$ ]]; then
  echo "TL_PG_PASSWORD may hold only letters, digits and . _ ~ - (openssl rand -hex 24)" >&2
  exit 2
fi

psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 \
  -f "$(dirname "${BASH_SOURCE[0]}")/roles-and-databases.sql"
echo "roles and databases ready: $TL_DATABASES"
