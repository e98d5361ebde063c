#!/usr/bin/env bash
# Builds (or reuses) the test swarm's local images and prints their cache directory: see scripts/local_images.py.
set -euo pipefail
exec python3 "$(cd "$(dirname "$0")" && pwd)/local_images.py" build
