#!/bin/sh
# A base backup of this environment's PostgreSQL (pg_basebackup: tar format, its own WAL streamed
# alongside), encrypted, to s3://$S3_BUCKET/$S3_PREFIX/pg$PG_MAJOR/base/<UTC end time>_<first WAL segment>.tar.gpg.
# With the WAL shipped since (wal-ship.sh) it is where a point-in-time restore starts (pitr-restore.sh).
# Base backups older than BACKUP_KEEP_DAYS are deleted (never the newest), and with them the shipped
# WAL that no kept base backup needs.
set -eu

. "$(dirname "$0")/env.sh"
: "${BACKUP_KEEP_DAYS:?}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/base"
pg_basebackup -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" --no-password \
  -D "$work/base" --format=tar --gzip --wal-method=stream --checkpoint=fast
# The first segment recovery needs, as PostgreSQL wrote it into the backup's label.
first="$(tar -xzOf "$work/base/base.tar.gz" backup_label | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p')"
if [ -z "$first" ]; then
  echo "base-backup: no START WAL LOCATION in the backup's backup_label" >&2
  exit 1
fi
now="${BACKUP_NOW:-$(date -u +%s)}"
key="$pitr/base/$(date -u -d "@$now" +%Y-%m-%dT%H-%M-%SZ)_$first.tar.gpg"
tar -C "$work/base" -cf "$work/base.tar" .
s3 s3api head-bucket --bucket "$S3_BUCKET" >/dev/null 2>&1 || s3 s3 mb "s3://$S3_BUCKET" >/dev/null
encrypt "$work/base.tar" "$work/base.tar.gpg"
s3 s3 cp --only-show-errors "$work/base.tar.gpg" "s3://$S3_BUCKET/$key"
echo "base-backup: s3://$S3_BUCKET/$key ($(wc -c < "$work/base.tar.gpg") bytes, encrypted)"

cutoff="$(date -u -d "@$((now - BACKUP_KEEP_DAYS * 86400))" +%Y-%m-%dT%H-%M-%SZ)"
base_backups | sed '$d' | awk -v cutoff="$cutoff" '{ if (substr($0, 1, 20) "" < cutoff "") print }' |
  while read -r old; do
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$pitr/base/$old"
    echo "base-backup: deleted $old (older than $BACKUP_KEEP_DAYS days)"
  done
oldest="$(base_backups | head -n 1)"
needed="${oldest#*_}"
needed="${needed%.tar.gpg}"
shipped_wal | awk -v needed="$needed" '{ segment = $0; sub(/\.gpg$/, "", segment); if (segment !~ /\.history$/ && segment "" < needed "") print }' |
  while read -r old; do
    s3 s3 rm --only-show-errors "s3://$S3_BUCKET/$pitr/wal/$old"
  done
