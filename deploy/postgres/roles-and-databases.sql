-- Trial Ledger's roles and databases, idempotent (the same as deploy/local/infra.sh does).
-- Run by the PostgreSQL superuser with, in the environment (never on a command line):
--   TL_PG_USER      the application role (trial_ledger), created if missing;
--   TL_PG_PASSWORD  its password, set on every run so that it follows deploy/.env;
--   TL_DATABASES    the databases, separated by spaces: one per service, owned by the role.
\getenv role TL_PG_USER
\getenv pw TL_PG_PASSWORD
\getenv dbs TL_DATABASES

SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN CREATEDB PASSWORD :'pw';

SELECT format('CREATE DATABASE %I OWNER %I', d, :'role')
  FROM unnest(regexp_split_to_array(trim(:'dbs'), '\s+')) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec

-- The projections service writes its ledger as ledger_writer: a role that may insert and
-- read but was never given UPDATE, DELETE or TRUNCATE on the append-only tables.
SELECT 'CREATE ROLE ledger_writer NOLOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_writer') \gexec
GRANT ledger_writer TO :"role";
