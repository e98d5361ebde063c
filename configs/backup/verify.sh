#!/bin/sh
# Restore drill: the newest (or a given) dump restored into a scratch database on the same server,
# then checked: every table the dump holds is there and readable, with its row count reported, and
# the vector extension is installed. The scratch database is dropped whatever happens.
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
at createdb -T template0 "$scratch"
at pg_restore --no-owner --exit-on-error -d "$scratch" "$work/db.dump"

# The tables the dump has data for (its table of contents), each counted in the restored copy.
pg_restore -l "$work/db.dump" | awk '$4 == "TABLE" && $5 == "DATA" { print $6 "." $7 }' > "$work/tables"
tables=0
while read -r table; do
  schema="${table%%.*}" name="${table#*.}"
  rows="$(at psql -d "$scratch" -Atc "SELECT count(*) FROM \"$schema\".\"$name\"")"
  echo "verify: $table $rows rows"
  tables=$((tables + 1))
done < "$work/tables"
if [ "$(at psql -d "$scratch" -Atc "SELECT count(*) FROM pg_extension WHERE extname = 'vector'")" != 1 ]; then
  echo "verify: $object restored without the vector extension" >&2
  exit 1
fi
echo "verify: $object restores: $tables tables, vector present"
