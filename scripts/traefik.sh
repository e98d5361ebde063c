#!/usr/bin/env bash
# Provides a real Traefik, built from Go modules at the version in scripts/tools/traefik/go.mod, so the
# tests can run the proxy with the configuration the program generates. Prints the binary's path.
# Cached in $NEXTCANDLE_TOOLS_CACHE (default ~/.cache/nextcandle-tools), keyed by the module files and Go.
# A cold build takes about nine minutes; a warm call is instant.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
module="$here/tools/traefik"
command -v go >/dev/null || { echo "traefik: needs Go (https://go.dev/dl/)" >&2; exit 1; }
cache="${NEXTCANDLE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nextcandle-tools}"
key="$( (go version; sha256sum < "$here/traefik.sh"; cd "$module" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
binary="$cache/traefik-$key/traefik"
if [ ! -x "$binary" ]; then
  echo "traefik: building $(sed -n 's/^require github.com\/traefik\/traefik\/v3 \(.*\)/\1/p' "$module/go.mod") from Go modules (first time: minutes)" >&2
  mkdir -p "$(dirname "$binary")"
  (cd "$module" && GOFLAGS="-mod=readonly -trimpath" go build -o "$binary.tmp" github.com/traefik/traefik/v3/cmd/traefik)
  mv "$binary.tmp" "$binary"
  find "$cache" -maxdepth 1 -name 'traefik-*' ! -name "traefik-$key" -exec rm -rf {} +
fi
echo "$binary"
