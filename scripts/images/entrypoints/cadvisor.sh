#!/bin/sh
# The stand-in cAdvisor's entrypoint.sh, to the contract in components/images.py.
exec /usr/bin/cadvisor -logtostderr "$@"
