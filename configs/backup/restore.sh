#!/bin/sh
# Restore this environment's PostgreSQL database from object storage.
#   restore.sh            the newest dump
#   restore.sh <object>   a given dump, e.g. app_x-2026-11-23T03-00-00Z.dump
# Objects the dump contains are dropped and recreated in one transaction: on any error nothing changes.
set -eu

secrets="${SECRETS_DIR:-/run/secrets}"
: "${S3_BUCKET:?}" "${S3_PREFIX:?}" "${POSTGRES_HOST:?}"
export PGPASSWORD="$(cat "$secrets/postgres_password")"
export AWS_ACCESS_KEY_ID="$(cat "$secrets/backup_s3_access_key")"
export AWS_SECRET_ACCESS_KEY="$(cat "$secrets/backup_s3_secret_key")"
export AWS_DEFAULT_REGION="${S3_REGION:-us-east-1}"
user="$(cat "$secrets/postgres_user")"
database="$(cat "$secrets/postgres_db")"
s3() { aws ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} "$@"; }

object="${1:-}"
if [ -z "$object" ]; then
  object="$(s3 s3 ls "s3://$S3_BUCKET/$S3_PREFIX/" | awk '{print $4}' | grep "^$database-.*\.dump$" | sort | tail -n 1 || true)"
fi
if [ -z "$object" ]; then
  echo "restore: no dump of $database under s3://$S3_BUCKET/$S3_PREFIX/" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$object" "$work/db.dump"
pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error \
  -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database" "$work/db.dump"
echo "restore: $object restored into $database"
