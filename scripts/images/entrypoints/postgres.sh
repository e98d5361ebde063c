#!/bin/bash
# The test swarm's entrypoint for pgvector/pgvector:*-pg17-bookworm, written here to the contract in
# components/images.py (docker-library/postgres's docker-entrypoint.sh): as root with `postgres`
# first, own PGDATA and re-run as postgres (gosu); read POSTGRES_*_FILE; initialise an empty PGDATA
# (initdb, the database, /docker-entrypoint-initdb.d) on a server that listens on no TCP address,
# with the same arguments; then run the server.
set -Eeo pipefail
[ "${1:0:1}" = "-" ] && set -- postgres "$@"
[ "$1" = postgres ] || exec "$@"

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
	exec gosu postgres "$BASH_SOURCE" "$@"
fi

from_file() {  # from_file VAR DEFAULT: VAR, or the content of VAR_FILE
	local var="$1" file="${1}_FILE" value="$2"
	if [ -n "${!var:-}" ] && [ -n "${!file:-}" ]; then echo "error: both $var and $file are set" >&2; exit 1; fi
	if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file:-}" ]; then value="$(< "${!file}")"; fi
	export "$var"="$value"
	unset "$file"
}
from_file POSTGRES_USER postgres
from_file POSTGRES_PASSWORD ""
from_file POSTGRES_DB "$POSTGRES_USER"
from_file POSTGRES_INITDB_ARGS ""

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	[ -n "$POSTGRES_PASSWORD" ] || { echo "error: POSTGRES_PASSWORD (or _FILE) is required to initialise" >&2; exit 1; }
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
	printf '\nhost all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
	export PGPASSWORD="$POSTGRES_PASSWORD"
	pg_ctl -D "$PGDATA" -w start -o "$(printf '%q ' "${@:2}" -c listen_addresses='' -p 5432)"
	run_psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --host /var/run/postgresql)
	if [ "$POSTGRES_DB" != postgres ]; then
		"${run_psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
	fi
	for script in /docker-entrypoint-initdb.d/*; do
		case "$script" in
			*.sh) if [ -x "$script" ]; then "$script"; else . "$script"; fi ;;
			*.sql) "${run_psql[@]}" --dbname "$POSTGRES_DB" -f "$script" ;;
			*) [ -e "$script" ] && echo "ignoring $script" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
fi
unset POSTGRES_PASSWORD
exec "$@"
