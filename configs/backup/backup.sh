#!/bin/sh
# Dump this environment's PostgreSQL database to object storage, then delete dumps older than
# BACKUP_KEEP_DAYS (never the newest). Run by backup-cron in the <env>_postgres-backup service.
# Objects: s3://$S3_BUCKET/$S3_PREFIX/<database>-<UTC timestamp>.dump.gpg (pg_dump custom format, encrypted),
# and beside it <database>-<UTC timestamp>.counts.gpg: each table's rows in the dump's snapshot.
set -eu

. "$(dirname "$0")/env.sh"
: "${BACKUP_KEEP_DAYS:?}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now="${BACKUP_NOW:-$(date -u +%s)}"
stamp="$(date -u -d "@$now" +%Y-%m-%dT%H-%M-%SZ)"
key="$S3_PREFIX/$database-$stamp.dump.gpg"

at() { "$@" -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database"; }
# await TEXT: until the session has printed TEXT (or has ended).
await() {
  until grep -qx "$1" "$work/session.out" 2>/dev/null; do
    if ! kill -0 "$session" 2>/dev/null; then
      echo "backup: the counting session ended early: $(cat "$work/session.err")" >&2
      exit 1
    fi
    sleep 0.1
  done
}

# The dump and the row counts the restore drill checks it against come from one snapshot: a session
# exports it and holds it open, counts every table in it, and pg_dump reads the same snapshot.
mkfifo "$work/session"
at psql -qAtX -v ON_ERROR_STOP=1 < "$work/session" > "$work/session.out" 2> "$work/session.err" &
session=$!
exec 3> "$work/session"
cat >&3 <<'SQL'
BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
SELECT 'snapshot ' || pg_export_snapshot();
SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  ORDER BY 1 \gexec
SELECT 'counted';
SQL
await counted
snapshot="$(sed -n 's/^snapshot //p' "$work/session.out")"
grep -v -e '^snapshot ' -e '^counted$' "$work/session.out" > "$work/counts" || true  # no table: none
pg_dump --format=custom --no-owner --snapshot="$snapshot" -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database" -f "$work/db.dump"
echo "COMMIT;" >&3
exec 3>&-
wait "$session"

s3 s3api head-bucket --bucket "$S3_BUCKET" >/dev/null 2>&1 || s3 s3 mb "s3://$S3_BUCKET" >/dev/null
encrypt "$work/db.dump" "$work/db.dump.gpg"
encrypt "$work/counts" "$work/counts.gpg"
s3 s3 cp --only-show-errors "$work/counts.gpg" "s3://$S3_BUCKET/${key%.dump.gpg}.counts.gpg"
s3 s3 cp --only-show-errors "$work/db.dump.gpg" "s3://$S3_BUCKET/$key"
echo "backup: s3://$S3_BUCKET/$key ($(wc -c < "$work/db.dump.gpg") bytes, encrypted; $(wc -l < "$work/counts") tables counted)"

cutoff="$(date -u -d "@$((now - BACKUP_KEEP_DAYS * 86400))" +%Y-%m-%dT%H-%M-%SZ)"
dumps | sed '$d' |
  awk -v prefix="$database-" -v cutoff="$cutoff" '{ stamp = substr($0, length(prefix) + 1); sub(/\.dump(\.gpg)?$/, "", stamp); if (stamp < cutoff) print }' |
  while read -r old; do
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$old"
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/${old%.dump*}.counts.gpg" 2>/dev/null || true
    echo "backup: deleted $old (older than $BACKUP_KEEP_DAYS days)"
  done
