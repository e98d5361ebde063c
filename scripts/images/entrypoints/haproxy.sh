#!/bin/sh
# The test swarm's entrypoint for haproxy:3.4-alpine, to the contract in components/images.py (the library
# image's docker-entrypoint.sh): options run haproxy; haproxy runs in master-worker mode, in the foreground.
set -e
case "$1" in -*) set -- haproxy "$@" ;; esac
if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
