#!/bin/sh
# The test swarm's entrypoint for redis:7.4.*-bookworm, written here to the contract in
# components/images.py (redis/docker-library-redis's docker-entrypoint.sh): a first argument that
# is a flag or a .conf file means redis-server; as root, own /data and drop to redis with setpriv.
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find /data \! -user redis -exec chown redis:redis '{}' +
	exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
exec "$@"
