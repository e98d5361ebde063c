#!/bin/sh
# Dump this environment's PostgreSQL database to object storage, then delete dumps older than
# BACKUP_KEEP_DAYS (never the newest). Run by go-cron in the <env>_postgres-backup service.
# Objects: s3://$S3_BUCKET/$S3_PREFIX/<database>-<UTC timestamp>.dump (pg_dump custom format).
set -eu

secrets="${SECRETS_DIR:-/run/secrets}"
: "${S3_BUCKET:?}" "${S3_PREFIX:?}" "${BACKUP_KEEP_DAYS:?}" "${POSTGRES_HOST:?}"
export PGPASSWORD="$(cat "$secrets/postgres_password")"
export AWS_ACCESS_KEY_ID="$(cat "$secrets/backup_s3_access_key")"
export AWS_SECRET_ACCESS_KEY="$(cat "$secrets/backup_s3_secret_key")"
export AWS_DEFAULT_REGION="${S3_REGION:-us-east-1}"
user="$(cat "$secrets/postgres_user")"
database="$(cat "$secrets/postgres_db")"
s3() { aws ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} "$@"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now="${BACKUP_NOW:-$(date -u +%s)}"
stamp="$(date -u -d "@$now" +%Y-%m-%dT%H-%M-%SZ)"
key="$S3_PREFIX/$database-$stamp.dump"

pg_dump --format=custom --no-owner -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database" -f "$work/db.dump"
s3 s3api head-bucket --bucket "$S3_BUCKET" >/dev/null 2>&1 || s3 s3 mb "s3://$S3_BUCKET" >/dev/null
s3 s3 cp --only-show-errors "$work/db.dump" "s3://$S3_BUCKET/$key"
echo "backup: s3://$S3_BUCKET/$key ($(wc -c < "$work/db.dump") bytes)"

cutoff="$(date -u -d "@$((now - BACKUP_KEEP_DAYS * 86400))" +%Y-%m-%dT%H-%M-%SZ)"
s3 s3 ls "s3://$S3_BUCKET/$S3_PREFIX/" | awk '{print $4}' | grep "^$database-.*\.dump$" | sort | sed '$d' |
  awk -v prefix="$database-" -v cutoff="$cutoff" '{ stamp = substr($0, length(prefix) + 1); sub(/\.dump$/, "", stamp); if (stamp < cutoff) print }' |
  while read -r old; do
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$old"
    echo "backup: deleted $old (older than $BACKUP_KEEP_DAYS days)"
  done
