#!/bin/sh
# Restore drill: the newest (or a given) dump restored into a scratch database on the same server,
# then checked: every table the dump holds is there with the rows it had when it was dumped (counted
# in the dump's own snapshot, backup.sh), and the vector extension is installed. The scratch
# database is dropped whatever happens.
#   verify.sh [<object>]      run by `python -m ops verify-backup <env>`, and after each scheduled backup
set -eu

. "$(dirname "$0")/env.sh"

choose_dump "${1:-}" verify

work="$(mktemp -d)"
scratch="verify_$(date -u +%Y%m%d%H%M%S)_$$"
at() { "$@" -h "$POSTGRES_HOST" -p "${POSTGRES_PORT:-5432}" -U "$user"; }
cleanup() { at dropdb --if-exists "$scratch" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/$object" "$work/object"
fetched "$work/object" "$work/db.dump" "$object"
# The row counts taken in the dump's snapshot (dumps from before they were recorded have none).
: > "$work/counts"
if s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$S3_PREFIX/${object%.dump*}.counts.gpg" "$work/counts.gpg" 2>/dev/null; then
  decrypt "$work/counts.gpg" "$work/counts" "${object%.dump*}.counts.gpg"
fi
at createdb -T template0 "$scratch"
at pg_restore --no-owner --exit-on-error -d "$scratch" "$work/db.dump"

# The tables the dump has data for (its table of contents), each counted in the restored copy.
pg_restore -l "$work/db.dump" | awk '$4 == "TABLE" && $5 == "DATA" { print $6 "." $7 }' > "$work/tables"
tables=0
while read -r table; do
  schema="${table%%.*}" name="${table#*.}"
  rows="$(at psql -d "$scratch" -Atc "SELECT count(*) FROM \"$schema\".\"$name\"")"
  recorded="$(awk -v table="$table" '$1 == table { print $2 }' "$work/counts")"
  if [ -n "$recorded" ] && [ "$recorded" != "$rows" ]; then
    echo "verify: $object restores $table with $rows rows, but it had $recorded when it was dumped" >&2
    exit 1
  fi
  echo "verify: $table $rows rows${recorded:+ (as dumped)}"
  tables=$((tables + 1))
done < "$work/tables"
if [ "$(at psql -d "$scratch" -Atc "SELECT count(*) FROM pg_extension WHERE extname = 'vector'")" != 1 ]; then
  echo "verify: $object restored without the vector extension" >&2
  exit 1
fi
echo "verify: $object restores: $tables tables, vector present"
