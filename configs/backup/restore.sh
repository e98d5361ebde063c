#!/bin/sh
# Restore this environment's PostgreSQL database from object storage.
#   restore.sh            the newest dump
#   restore.sh <object>   a given dump, e.g. app_x-2026-11-23T03-00-00Z.dump.gpg (older .dump ones are not encrypted)
# Objects the dump contains are dropped and recreated in one transaction: on any error nothing changes.
set -eu

. "$(dirname "$0")/env.sh"

choose_dump "${1:-}" restore

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$object" "$work/object"
fetched "$work/object" "$work/db.dump" "$object"
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error \
  -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database" "$work/db.dump"
echo "restore: $object restored into $database"
