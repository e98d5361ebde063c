#!/bin/sh
# Back up the platform's data: platform-backup.sh [grafana] [n8n] [objects] (default: all three).
# Run by backup-cron in shared_backup, and by `python -m ops backup <kind>`.
#   grafana  s3://$S3_BUCKET/$S3_PREFIX/grafana/grafana-<UTC stamp>.db.gz.gpg
#   n8n      s3://$S3_BUCKET/$S3_PREFIX/n8n/n8n-<UTC stamp>.tar.gz.gpg (database.sqlite and encryption_key)
#   objects  every bucket of the object store: off-site, one archive of them all,
#            s3://$S3_BUCKET/$S3_PREFIX/objects/objects-<UTC stamp>.tar.gz.gpg; without an off-site target,
#            synced into $OBJECT_COPIES/<bucket> (a volume of its own on this swarm, plain like the store
#            itself), where objects deleted at the source stay (it is a backup, not a mirror)
#   (everything that leaves for the target is encrypted with the stack's backup key, crypt.sh)
#   state    s3://$S3_BUCKET/$S3_PREFIX/state/state-<UTC stamp>.tar.gz.sealed: `platform-backup.sh state FILE`
# Archives older than BACKUP_KEEP_DAYS are deleted, never the newest.
set -eu

. "$(dirname "$0")/platform-env.sh"
: "${BACKUP_KEEP_DAYS:?}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
now="${BACKUP_NOW:-$(date -u +%s)}"
stamp="$(date -u -d "@$now" +%Y-%m-%dT%H-%M-%SZ)"
cutoff="$(date -u -d "@$((now - BACKUP_KEEP_DAYS * 86400))" +%Y-%m-%dT%H-%M-%SZ)"

upload() {  # upload FILE KIND NAME: encrypted, as NAME.gpg
  encrypt "$1" "$1.gpg"
  store "$1.gpg" "$2" "$3.gpg"
}

store() {  # store FILE KIND NAME: as it is, then delete KIND's archives older than BACKUP_KEEP_DAYS
  target s3api head-bucket --bucket "$S3_BUCKET" >/dev/null 2>&1 || target s3 mb "s3://$S3_BUCKET" >/dev/null
  target s3 cp --only-show-errors "$1" "s3://$S3_BUCKET/$S3_PREFIX/$2/$3"
  echo "backup: s3://$S3_BUCKET/$S3_PREFIX/$2/$3 ($(wc -c < "$1") bytes, encrypted)"
  archives "$2" | sed '$d' |
    awk -v prefix="$2-" -v cutoff="$cutoff" '{ stamp = substr($0, length(prefix) + 1); sub(/\..*$/, "", stamp); if (stamp < cutoff) print }' |
    while read -r old; do
      target s3 rm --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$2/$old"
      echo "backup: deleted $old (older than $BACKUP_KEEP_DAYS days)"
    done
}

backup_grafana() {
  sqlite_copy "$GRAFANA_DB" "$work/grafana.db"
  gzip "$work/grafana.db"
  upload "$work/grafana.db.gz" grafana "grafana-$stamp.db.gz"
}

backup_n8n() {
  mkdir "$work/n8n"
  sqlite_copy "$N8N_DB" "$work/n8n/database.sqlite"
  # Its credentials are encrypted with this key: an archive without it restores none of them.
  cp "$secrets/n8n_encryption_key" "$work/n8n/encryption_key"
  tar -czf "$work/n8n.tar.gz" -C "$work/n8n" database.sqlite encryption_key
  upload "$work/n8n.tar.gz" n8n "n8n-$stamp.tar.gz"
}

backup_objects() {
  if [ -z "${STORAGE_ENDPOINT:-}" ]; then
    echo "backup: objects: no object store to copy"
    return
  fi
  buckets="$(storage s3api list-buckets --query 'Buckets[].Name' --output text)"
  if [ "${BACKUP_OFF_SITE:-false}" != true ]; then
    # No off-site target: a second copy in a volume of its own (copying the store onto itself
    # protects nothing). The environments' dumps in the backups bucket get their second copy here too.
    for bucket in $buckets; do
      storage s3 sync --only-show-errors "s3://$bucket" "${OBJECT_COPIES:?}/$bucket"
      echo "backup: bucket $bucket copied to $OBJECT_COPIES/$bucket (set backupS3Endpoint for a copy off this swarm)"
    done
    return
  fi
  # Off-site: through this container's disk (S3 has no copy between services), every bucket in one
  # archive, encrypted like every other kind and kept for BACKUP_KEEP_DAYS.
  mkdir "$work/objects"
  for bucket in $buckets; do
    storage s3 sync --only-show-errors "s3://$bucket" "$work/objects/$bucket"
  done
  tar -czf "$work/objects.tar.gz" -C "$work/objects" .
  rm -rf "$work/objects"
  upload "$work/objects.tar.gz" objects "objects-$stamp.tar.gz"
  echo "backup: buckets $(echo $buckets) copied off-site"
}

# state FILE: the Pulumi state, sealed with the passphrase by `python -m ops backup state` (not
# encrypted again here: this stack's key is in that state, so it could not open its own backup).
if [ "${1:-}" = state ]; then
  store "${2:?usage: platform-backup.sh state FILE}" state "state-$stamp.tar.gz.sealed"
  exit 0
fi

for kind in ${*:-grafana n8n objects}; do
  case "$kind" in
    grafana | n8n | objects) "backup_$kind" ;;
    *) echo "backup: unknown kind $kind (grafana, n8n or objects)" >&2; exit 2 ;;
  esac
done
