#!/bin/bash
# The stand-in runner image's /entrypoint.sh, to the contract in components/images.py: the token
# comes from ACCESS_TOKEN or RUNNER_TOKEN in the environment (the image reads no *_FILE), and
# DISABLE_AUTO_UPDATE turns self-update off. It registers nothing and runs no job.
set -e
if [ -z "${ACCESS_TOKEN:-}${RUNNER_TOKEN:-}" ]; then echo "error: ACCESS_TOKEN or RUNNER_TOKEN is required" >&2; exit 1; fi
[ -n "${DISABLE_AUTO_UPDATE+set}" ] || echo "warning: the real runner would update itself and exit (auto-update is on)" >&2
unset ACCESS_TOKEN RUNNER_TOKEN
exec "$@"
