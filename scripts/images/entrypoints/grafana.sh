#!/bin/bash
# The stand-in Grafana's /run.sh, to the contract in components/images.py (grafana's
# packaging/docker/run.sh): every GF_X__FILE is read, as the image's uid, into GF_X; both set is an error.
set -e
for variable in $(compgen -e | grep '^GF_.*__FILE$'); do
	target="${variable%__FILE}"
	if [ -n "${!target:-}" ]; then echo "ERROR: both $target and $variable are set (but are exclusive)" >&2; exit 1; fi
	export "$target"="$(< "${!variable}")"
	unset "$variable"
done
exec /usr/share/grafana/bin/grafana "$@"
