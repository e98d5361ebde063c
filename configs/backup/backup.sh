#!/bin/sh
# Dump this environment's PostgreSQL database to object storage, then delete dumps older than
# BACKUP_KEEP_DAYS (never the newest). Run by backup-cron in the <env>_postgres-backup service.
# Objects: s3://$S3_BUCKET/$S3_PREFIX/<database>-<UTC timestamp>.dump.gpg (pg_dump custom format, encrypted).
set -eu

. "$(dirname "$0")/env.sh"
: "${BACKUP_KEEP_DAYS:?}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now="${BACKUP_NOW:-$(date -u +%s)}"
stamp="$(date -u -d "@$now" +%Y-%m-%dT%H-%M-%SZ)"
key="$S3_PREFIX/$database-$stamp.dump.gpg"

pg_dump --format=custom --no-owner -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database" -f "$work/db.dump"
s3 s3api head-bucket --bucket "$S3_BUCKET" >/dev/null 2>&1 || s3 s3 mb "s3://$S3_BUCKET" >/dev/null
encrypt "$work/db.dump" "$work/db.dump.gpg"
s3 s3 cp --only-show-errors "$work/db.dump.gpg" "s3://$S3_BUCKET/$key"
echo "backup: s3://$S3_BUCKET/$key ($(wc -c < "$work/db.dump.gpg") bytes, encrypted)"

cutoff="$(date -u -d "@$((now - BACKUP_KEEP_DAYS * 86400))" +%Y-%m-%dT%H-%M-%SZ)"
dumps | sed '$d' |
  awk -v prefix="$database-" -v cutoff="$cutoff" '{ stamp = substr($0, length(prefix) + 1); sub(/\.dump(\.gpg)?$/, "", stamp); if (stamp < cutoff) print }' |
  while read -r old; do
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$old"
    echo "backup: deleted $old (older than $BACKUP_KEEP_DAYS days)"
  done
