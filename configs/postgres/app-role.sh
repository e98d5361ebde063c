#!/bin/sh
# The applications' login: role `app` (APP_ROLE) with the password of the app_password secret, no
# superuser, no role or database creation, no replication; it may connect to the application
# database, create objects in its public schema, and use every table and sequence there, those the
# superuser (operators, migrations run as it, backups) makes later included.
# Started in the background by the PostgreSQL service's command at every start: it waits for the
# server, then creates or updates the role, so a new database, an adopted one and a rotated password
# all end the same. Runs as root in the container; reads the Docker secrets.
set -eu
secrets="${SECRETS_DIR:-/run/secrets}"
port="${PGPORT:-5432}"
tries=0
until pg_isready -q -h 127.0.0.1 -p "$port"; do
  tries=$((tries + 1))
  if [ "$tries" -gt 600 ]; then
    echo "app-role: PostgreSQL did not accept connections within 10 minutes; the app login was not updated" >&2
    exit 1
  fi
  sleep 1
done
# The password reaches psql through its environment (\getenv), never a command line.
APP_PASSWORD="$(cat "$secrets/app_password")" PGPASSWORD="$(cat "$secrets/postgres_password")" \
  psql -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$(cat "$secrets/postgres_user")" -d "$(cat "$secrets/postgres_db")" \
  -v app="${APP_ROLE:-app}" <<'SQL'
\getenv password APP_PASSWORD
SELECT current_user AS owner, current_database() AS db, NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') AS missing \gset
\if :missing
CREATE ROLE :"app" LOGIN;
\endif
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'password';
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
GRANT USAGE, CREATE ON SCHEMA public TO :"app";
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO :"app";
SQL
echo "app-role: the login ${APP_ROLE:-app} is ready"
