-- Creates windpipe's databases on first start of the postgres container (docker-entrypoint-initdb.d
-- runs this once, on an empty volume, as $POSTGRES_USER). Idempotent all the same: each database is
-- created only if missing, so the script can be re-run by hand (psql -f) without harm.
--   windpipe_source  the turbine's SCADA table (written by `windpipe seed`, read by the API)
--   windpipe_target  the 10-minute aggregates (written by the ETL)
--   dagster          Dagster's instance storage: runs, event logs, schedules (dagster-postgres)
\set ON_ERROR_STOP on
SELECT 'CREATE DATABASE windpipe_source'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'windpipe_source')\gexec
SELECT 'CREATE DATABASE windpipe_target'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'windpipe_target')\gexec
SELECT 'CREATE DATABASE dagster'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dagster')\gexec
