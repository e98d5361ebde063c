#!/usr/bin/env bash
# Deploy the dev stack on this machine: a local single-node Swarm, the local file state backend and
# the pinned Pulumi engine (scripts/engine.sh: an installed CLI of the pinned version, else the
# official release, else a build from Go modules). Needs Docker and Python 3.11+.
# Set PULUMI_CONFIG_PASSPHRASE to encrypt secrets with a passphrase of your own (an empty one is
# used otherwise, fine for a laptop, not for shared state).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker >/dev/null || { echo "error: Docker is not installed" >&2; exit 2; }
[ -d venv ] || python3 -m venv venv
echo "Installing the Python packages into venv/ (a minute or so the first time)"
venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
NEXTCANDLE_ENGINE_BIN="$(bash scripts/engine.sh)" || { echo "error: no Pulumi engine (see the messages above)" >&2; exit 2; }
export NEXTCANDLE_ENGINE_BIN PATH="$NEXTCANDLE_ENGINE_BIN:$PATH"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
venv/bin/python -m ops up dev
# `up` returns once Swarm has the specs; say whether the tasks run (images may still be pulling).
if ! venv/bin/python -m ops status; then
  echo "Not every service runs yet (first image pulls take minutes). Follow with: venv/bin/python -m ops status" >&2
fi
