#!/usr/bin/env bash
# Deploy the dev stack on this machine: a local single-node Swarm and the local file state backend.
# Needs Docker and the Pulumi CLI. Set PULUMI_CONFIG_PASSPHRASE to encrypt secrets with a passphrase
# of your own (an empty one is used otherwise, fine for a laptop, not for shared state).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null || { echo "error: Docker is not installed" >&2; exit 2; }
command -v pulumi >/dev/null || { echo "error: the Pulumi CLI is not installed: https://www.pulumi.com/docs/install/" >&2; exit 2; }
[ -d venv ] || python3 -m venv venv
venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
exec venv/bin/python -m ops up dev
