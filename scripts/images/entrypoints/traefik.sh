#!/bin/sh
# The test swarm's entrypoint for traefik:v3.7, to the contract in components/images.py (the
# library image's entrypoint.sh): flags, or a traefik sub-command, run traefik; anything else runs as is.
set -e
case "$1" in -*) set -- traefik "$@" ;; esac
if [ "$1" != traefik ] && traefik "$1" --help >/dev/null 2>&1; then set -- traefik "$@"; fi
exec "$@"
