#!/bin/sh
# The test swarm's entrypoint for chrislusf/seaweedfs, written here to the contract in
# components/images.py (seaweedfs's docker/entrypoint.sh): as root, own /data when its owner differs
# and re-run as seaweed (uid 1000) before weed starts; `server` gets the image's default flags.
set -e
if [ "$(id -u)" = 0 ]; then
	[ "$(stat -c %u:%g /data)" = 1000:1000 ] || chown -R seaweed:seaweed /data || echo "warning: cannot chown /data" >&2
	exec setpriv --reuid=seaweed --regid=seaweed --init-groups "$0" "$@"
fi
case "$1" in
	server)
		shift
		case " $* " in *" -volume.max="*) exec weed server -dir=/data -master.volumeSizeLimitMB=1024 "$@" ;; esac
		exec weed server -dir=/data -volume.max=0 -master.volumeSizeLimitMB=1024 "$@" ;;
	*) exec weed "$@" ;;
esac
