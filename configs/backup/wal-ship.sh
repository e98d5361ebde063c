#!/bin/sh
# Ship the WAL segments PostgreSQL archived into the WAL volume (configs/postgres/parts/archiving.conf) to
# object storage, encrypted, deleting each local copy only once it is uploaded.
#   wal-ship.sh              one pass
#   wal-ship.sh --every N    a pass every N seconds, for ever (the backup service starts it beside backup-cron)
#   wal-ship.sh --switch     close the current segment (pg_switch_wal), wait until it is archived, then ship:
#                            everything written so far is then in the object store
# Objects: s3://$S3_BUCKET/$S3_PREFIX/pg$PG_MAJOR/wal/<segment>.gpg. For Prometheus, $METRICS_TEXTFILE_DIR/wal.prom
# says when the last pass ended and when the oldest segment still waiting was archived (0: none waits).
set -eu

. "$(dirname "$0")/env.sh"
archive="${WAL_DIR:?}/archive"
at() { "$@" -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user" -d "$database"; }

ship() {  # one pass; any failure leaves the segment in place for the next one
  work="$(mktemp -d)" || return 1
  status=0
  for segment in $(ls "$archive" | grep -v '\.part$' | sort); do
    encrypt "$archive/$segment" "$work/$segment.gpg" &&
      s3 s3 cp --only-show-errors "$work/$segment.gpg" "s3://$S3_BUCKET/$pitr/wal/$segment.gpg" &&
      rm -f "$archive/$segment" || { status=1; break; }
    rm -f "$work/$segment.gpg"
  done
  rm -rf "$work"
  return "$status"
}

metrics() {
  [ -n "${METRICS_TEXTFILE_DIR:-}" ] || return 0
  mkdir -p "$METRICS_TEXTFILE_DIR"
  oldest="$(ls -tr "$archive" | grep -v '\.part$' | head -n 1 || true)"
  waiting=0
  [ -z "$oldest" ] || waiting="$(stat -c %Y "$archive/$oldest" 2>/dev/null || echo 0)"
  cat > "$METRICS_TEXTFILE_DIR/.wal.prom" <<METRICS
# HELP nextcandle_wal_ship_last_pass_timestamp_seconds When the WAL shipper last finished a pass.
# TYPE nextcandle_wal_ship_last_pass_timestamp_seconds gauge
nextcandle_wal_ship_last_pass_timestamp_seconds $(date +%s)
# HELP nextcandle_wal_oldest_waiting_timestamp_seconds When the oldest archived WAL segment not yet shipped was archived (0: none).
# TYPE nextcandle_wal_oldest_waiting_timestamp_seconds gauge
nextcandle_wal_oldest_waiting_timestamp_seconds $waiting
METRICS
  mv "$METRICS_TEXTFILE_DIR/.wal.prom" "$METRICS_TEXTFILE_DIR/wal.prom"
}

mkdir -p "$archive"
case "${1:-}" in
  --every)
    while :; do
      ship || echo "wal-ship: a segment could not be shipped; trying again in ${2:?} s" >&2
      metrics
      sleep "$2"
    done ;;
  --switch)
    segment="$(at psql -Atc "SELECT pg_walfile_name(pg_switch_wal())")"
    tries=0
    until [ "$(at psql -Atc "SELECT coalesce(last_archived_wal >= '$segment', false) FROM pg_stat_archiver")" = t ]; do
      tries=$((tries + 1))
      if [ "$tries" -gt 120 ]; then
        echo "wal-ship: PostgreSQL did not archive $segment within 60 s (its log says why)" >&2
        exit 1
      fi
      sleep 0.5
    done
    ship
    echo "wal-ship: shipped everything up to $segment" ;;
  *) ship; metrics ;;
esac
