#!/bin/sh
# The backup image's run.sh, to the contract in components/images.py: on SCHEDULE, or once.
set -e
if [ -n "${SCHEDULE:-}" ]; then exec go-cron "$SCHEDULE" /bin/sh backup.sh; fi
exec /bin/sh backup.sh
