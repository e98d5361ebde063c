# Sourced by platform-backup.sh and platform-restore.sh: where backups go, and the helpers they share.
# target: the backup target (off-site S3, or the platform's object store); storage: the object store
# whose buckets are copied, set only when the target is off-site.
secrets="${SECRETS_DIR:-/run/secrets}"
: "${S3_BUCKET:?}" "${S3_PREFIX:?}" "${GRAFANA_DB:?}" "${N8N_DB:?}"
export AWS_DEFAULT_REGION="${S3_REGION:-us-east-1}"

target() {
  env AWS_ACCESS_KEY_ID="$(cat "$secrets/backup_s3_access_key")" AWS_SECRET_ACCESS_KEY="$(cat "$secrets/backup_s3_secret_key")" \
    aws ${S3_ENDPOINT:+--endpoint-url "$S3_ENDPOINT"} "$@"
}
storage() {
  env AWS_ACCESS_KEY_ID="$(cat "$secrets/storage_s3_access_key")" AWS_SECRET_ACCESS_KEY="$(cat "$secrets/storage_s3_secret_key")" \
    aws --endpoint-url "$STORAGE_ENDPOINT" "$@"
}

# sqlite_copy FROM TO: SQLite's online backup API (consistent while the application writes), then a check.
sqlite_copy() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
source, destination = (sqlite3.connect(path, timeout=60) for path in sys.argv[1:3])
with destination:
    source.backup(destination)
result = destination.execute("PRAGMA quick_check").fetchone()[0]
source.close()
destination.close()
if result != "ok":
    sys.exit(f"{sys.argv[2]}: quick_check says {result}")
PY
}

. "$(dirname "$0")/crypt.sh"

# archives KIND: this kind's archives in the target, oldest first.
archives() {
  target s3 ls "s3://$S3_BUCKET/$S3_PREFIX/$1/" | awk '{print $4}' | grep "^$1-" | sort || true
}
