#!/bin/sh
# Point-in-time restore of this environment's PostgreSQL: `python -m ops restore <env> --to TIME` runs
#   pitr-restore.sh <UTC stamp> '<target time>'   e.g. 2026-12-01T01-00-00Z '2026-12-01 01:00:00+00'
# while the postgres service is stopped, then starts it and runs `pitr-restore.sh --finish`.
# The newest base backup finished before the target and every WAL segment shipped since are fetched
# and decrypted first; only then is the data directory replaced by the base backup, with recovery
# settings that make PostgreSQL replay the WAL up to the target when it starts, then open the database
# on a new timeline. `--finish` waits for that, then removes the settings and the fetched WAL.
set -eu

. "$(dirname "$0")/env.sh"
data="${PGDATA:?}" restore="${WAL_DIR:?}/restore"
at() { "$@" -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database"; }

if [ "${1:-}" = --finish ]; then
  tries=0
  until [ "$(at psql -Atc 'SELECT pg_is_in_recovery()' 2>/dev/null || true)" = f ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt "${RECOVERY_WAIT_SECONDS:-900}" ]; then
      echo "pitr-restore: PostgreSQL has not finished recovery; its log says why (python -m ops status -v)" >&2
      exit 1
    fi
    sleep 1
  done
  at psql -q -v ON_ERROR_STOP=1 -c 'ALTER SYSTEM RESET restore_command' -c 'ALTER SYSTEM RESET recovery_target_time' \
    -c 'ALTER SYSTEM RESET recovery_target_action' -c 'SELECT pg_reload_conf()' >/dev/null
  rm -rf "$restore"
  echo "pitr-restore: recovery finished; $database is open, on timeline $(at psql -Atc 'SELECT timeline_id FROM pg_control_checkpoint()')"
  exit 0
fi

stamp="${1:?usage: pitr-restore.sh UTC-STAMP TARGET-TIME | --finish}" target="${2:?usage: pitr-restore.sh UTC-STAMP TARGET-TIME}"
owner="${POSTGRES_UID:?}"
if [ -f "$data/postmaster.pid" ]; then
  echo "pitr-restore: $data/postmaster.pid exists: PostgreSQL still runs (or did not stop cleanly); nothing was changed" >&2
  exit 1
fi
base="$(base_backups | awk -v stamp="$stamp" '{ if (substr($0, 1, 20) "" < stamp "") print }' | tail -n 1)"
if [ -z "$base" ]; then
  echo "pitr-restore: no base backup under s3://$S3_BUCKET/$pitr/base/ finished before $target" \
    "(the oldest: $(base_backups | head -n 1 || true)); nothing was changed" >&2
  exit 1
fi
first="${base#*_}"
first="${first%.tar.gpg}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$pitr/base/$base" "$work/base.tar.gpg"
decrypt "$work/base.tar.gpg" "$work/base.tar" "$base"
mkdir "$work/base"
tar -xf "$work/base.tar" -C "$work/base"
rm -rf "$restore"
mkdir -p "$restore"
segments=0
for object in $(shipped_wal | awk -v first="$first" '{ segment = $0; sub(/\.gpg$/, "", segment); if (segment ~ /\.history$/ || segment "" >= first "") print }'); do
  s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$pitr/wal/$object" "$work/segment.gpg"
  decrypt "$work/segment.gpg" "$restore/${object%.gpg}" "$object"
  segments=$((segments + 1))
done
echo "pitr-restore: fetched $base and $segments WAL files"

# Everything is here and decrypted: replace the data directory.
find "$data" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
tar -xzf "$work/base/base.tar.gz" -C "$data"
tar -xzf "$work/base/pg_wal.tar.gz" -C "$data/pg_wal"
touch "$data/recovery.signal"
cat >> "$data/postgresql.auto.conf" <<SETTINGS
restore_command = 'cp "$restore/%f" "%p"'
recovery_target_time = '$target'
recovery_target_action = 'promote'
SETTINGS
chown -R "$owner:$owner" "$data" "$restore"
chmod 700 "$data"
echo "pitr-restore: $data holds $base; PostgreSQL replays WAL up to $target when it starts"
