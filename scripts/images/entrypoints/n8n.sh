#!/bin/sh
# The stand-in n8n's /docker-entrypoint.sh, to the contract in components/images.py: no user switch, run n8n.
exec n8n "$@"
