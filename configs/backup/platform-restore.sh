#!/bin/sh
# Restore the platform's data from the backup target. Stop the service first (python -m ops restore does).
#   platform-restore.sh grafana [ARCHIVE]   the newest (or the given) grafana-*.db.gz[.gpg] into Grafana's database
#   platform-restore.sh n8n [ARCHIVE]       the newest (or the given) n8n-*.tar.gz[.gpg] into n8n's database
#   platform-restore.sh state [ARCHIVE]     the newest (or the given) state backup, as it is, to $STATE_FILE
#   platform-restore.sh objects [BUCKET|ARCHIVE]  every copied bucket (or one) back into the object
#                                           store, from the newest off-site archive (or the one named)
#                                           or from the second copy's volume; objects
#                                           the store has and the copy lacks are left alone
# A database is written through SQLite's backup API in one transaction: on any error it is unchanged.
set -eu

. "$(dirname "$0")/platform-env.sh"

kind="${1:-}"
item="${2:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch KIND: download the chosen or newest archive of KIND to $work/archive
  if [ -z "$item" ]; then
    item="$(archives "$1" | tail -n 1)"
  fi
  if [ -z "$item" ]; then
    echo "restore: no $1 archive under s3://$S3_BUCKET/$S3_PREFIX/$1/" >&2
    exit 1
  fi
  target s3 cp --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$1/$item" "$work/object"
  fetched "$work/object" "$work/archive" "$item"
}

case "$kind" in
  grafana)
    fetch grafana
    gunzip -c "$work/archive" > "$work/grafana.db"
    sqlite_copy "$work/grafana.db" "$GRAFANA_DB"
    echo "restore: $item restored into Grafana's database"
    ;;
  n8n)
    fetch n8n
    mkdir "$work/n8n"
    tar -xzf "$work/archive" -C "$work/n8n"
    if ! cmp -s "$work/n8n/encryption_key" "$secrets/n8n_encryption_key"; then
      echo "restore: $item was made with another n8n encryption key, so its credentials would not decrypt;" \
        "nothing was restored. The archive's key is its encryption_key file: give n8n that key first (README, \"Backups\")." >&2
      exit 1
    fi
    sqlite_copy "$work/n8n/database.sqlite" "$N8N_DB"
    echo "restore: $item restored into n8n's database"
    ;;
  state)  # fetched only: `python -m ops restore state` opens it with the passphrase and replaces the state
    fetch state
    mv "$work/archive" "${STATE_FILE:?}"
    echo "restore: $item fetched"
    ;;
  objects)
    if [ -z "${STORAGE_ENDPOINT:-}" ]; then
      echo "restore: objects: no object store to restore into" >&2
      exit 1
    fi
    if [ "${BACKUP_OFF_SITE:-false}" != true ]; then  # the second copy in its own volume
      for bucket in ${item:-$(ls "${OBJECT_COPIES:?}")}; do
        storage s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || storage s3 mb "s3://$bucket" >/dev/null
        storage s3 sync --only-show-errors "$OBJECT_COPIES/$bucket" "s3://$bucket"
        echo "restore: bucket $bucket restored from $OBJECT_COPIES"
      done
      exit 0
    fi
    # Off-site: an archive of all buckets (the newest, or the one named), decrypted here.
    only=""
    case "$item" in
      objects-*) ;;
      *) only="$item" item="" ;;
    esac
    fetch objects
    mkdir "$work/objects"
    tar -xzf "$work/archive" -C "$work/objects"
    for bucket in ${only:-$(ls "$work/objects")}; do
      if [ ! -d "$work/objects/$bucket" ]; then
        echo "restore: $item holds no bucket $bucket" >&2
        exit 1
      fi
      storage s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || storage s3 mb "s3://$bucket" >/dev/null
      storage s3 sync --only-show-errors "$work/objects/$bucket" "s3://$bucket"
      echo "restore: bucket $bucket restored from $item"
    done
    ;;
  *)
    echo "usage: platform-restore.sh grafana|n8n|state [ARCHIVE] | objects [BUCKET]" >&2
    exit 2
    ;;
esac
