# Sourced by every environment backup script: credentials from the Docker secrets, and the aws CLI wrapper.
secrets="${SECRETS_DIR:-/run/secrets}"
: "${S3_BUCKET:?}" "${S3_PREFIX:?}" "${POSTGRES_HOST:?}"
export PGPASSWORD="$(cat "$secrets/postgres_password")"
export AWS_ACCESS_KEY_ID="$(cat "$secrets/backup_s3_access_key")"
export AWS_SECRET_ACCESS_KEY="$(cat "$secrets/backup_s3_secret_key")"
export AWS_DEFAULT_REGION="${S3_REGION:-us-east-1}"
user="$(cat "$secrets/postgres_user")"
database="$(cat "$secrets/postgres_db")"
s3() { aws ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} "$@"; }
dumps() { s3 s3 ls "s3://$S3_BUCKET/$S3_PREFIX/" | awk '{print $4}' | grep -E "^$database-.*\.dump(\.gpg)?$" | sort; }
# Point-in-time recovery's objects, under a prefix of the PostgreSQL major that wrote them (a new
# major's cluster starts its WAL names again): base backups (<UTC end time>_<first WAL segment>.tar.gpg) and WAL
# (segments, timeline histories and base backups' .backup labels, as PostgreSQL archived them).
pitr="$S3_PREFIX/pg${PG_MAJOR:?}"
base_backups() { s3 s3 ls "s3://$S3_BUCKET/$pitr/base/" | awk '{print $4}' | grep -E '^[0-9TZ-]{20}_[0-9A-F]{24}\.tar\.gpg$' | sort; }
shipped_wal() { s3 s3 ls "s3://$S3_BUCKET/$pitr/wal/" | awk '{print $4}' | grep -E '^[0-9A-F]{8}([0-9A-F]{16}(\.[0-9A-F]{8}\.backup)?|\.history)\.gpg$' | sort; }
# choose_dump [OBJECT] WHO: sets $object to the given dump, else the newest; with none, says so and exits.
choose_dump() {
  object="${1:-$(dumps | tail -n 1 || true)}"
  if [ -z "$object" ]; then
    echo "$2: no dump of $database under s3://$S3_BUCKET/$S3_PREFIX/" >&2
    exit 1
  fi
}
. "$(dirname "$0")/crypt.sh"
