#!/usr/bin/env bash
# Provides the pinned Pulumi engine: the `pulumi` CLI, a Python language host (scripts/engine/cli/language)
# and the docker and random resource plugins.
# Prints the directory that holds them (put it first on PATH; Pulumi finds plugins there).
#
#   scripts/engine.sh            a matching installed CLI, else the official release (needs the
#                                internet; it fetches the official plugins itself), else a build
#                                from Go modules (cached)
#   scripts/engine.sh --build    always the Go-module build
#   scripts/engine.sh --tidy     after changing a pin: resolve scripts/engine/go.mod and go.sum again
#
# Versions: the CLI is github.com/pulumi/pulumi/pkg/v3 at the `pulumi` version in requirements.txt;
# the plugins answer for the pulumi_docker / pulumi_random versions there. Builds are cached in
# $NEXTCANDLE_ENGINE_CACHE (default ~/.cache/nextcandle-engine), keyed by this script, scripts/engine/ and Go.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
log() { echo "engine: $*" >&2; }

pin() { sed -n "s/^$1==\([0-9.]*\).*/\1/p" "$root/requirements.txt"; }
cli_version="$(pin pulumi)" docker_version="$(pin pulumi-docker)" random_version="$(pin pulumi-random)"

mode="${1:-}"
if [ -z "$mode" ] && command -v pulumi >/dev/null 2>&1 \
   && [ "$(pulumi version 2>/dev/null)" = "v$cli_version" ]; then
  # An official install fetches the official plugins at the SDKs' versions by itself.
  dirname "$(command -v pulumi)"
  exit 0
fi

cache="${NEXTCANDLE_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nextcandle-engine}"
out=""
if command -v go >/dev/null; then
  key="$( (go version; echo "$cli_version $docker_version $random_version";
           sha256sum < "$here/engine.sh"; cd "$here/engine" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
  out="$cache/$key"
fi
built() { [ -n "$out" ] && [ -x "$out/bin/pulumi" ] && [ -x "$out/bin/pulumi-language-python" ] \
  && [ -x "$out/bin/pulumi-resource-docker" ] && [ -x "$out/bin/pulumi-resource-random" ]; }
if [ "$mode" != --tidy ] && built; then
  echo "$out/bin"
  exit 0
fi

release="$cache/release-v$cli_version"
if [ -z "$mode" ]; then
  if [ -x "$release/bin/pulumi" ]; then echo "$release/bin"; exit 0; fi
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="" ;; esac
  url="https://github.com/pulumi/pulumi/releases/download/v$cli_version/pulumi-v$cli_version-$(uname -s | tr A-Z a-z)-$arch.tar.gz"
  if [ -n "$arch" ] && command -v curl >/dev/null && mkdir -p "$release" \
     && curl -fsSL --connect-timeout 10 --max-time 300 "$url" | tar -xz -C "$release" --strip-components=1 -f - 2>/dev/null \
     && [ -x "$release/pulumi" ]; then
    mkdir -p "$release/bin" && mv "$release"/pulumi* "$release/bin/" 2>/dev/null || true
    log "downloaded the official Pulumi CLI v$cli_version"
    echo "$release/bin"
    exit 0
  fi
  rm -rf "$release"
  log "no official release reachable; building from Go modules instead"
fi

[ -n "$out" ] || { log "needs Go (https://go.dev/dl/), the internet, or the Pulumi CLI v$cli_version"; exit 1; }

# One build at a time (a second run waits, then finds the first one's result): two builds with one
# key would delete each other's sources.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [ "$mode" != --tidy ] && built; then
  echo "$out/bin"
  exit 0
fi

started=$SECONDS
log "building Pulumi v$cli_version, docker plugin $docker_version, random plugin $random_version into $out (first time: several minutes)"
src="$out/src"
rm -rf "$src" && mkdir -p "$src" "$out/bin"
# Two modules: the CLI's and the plugins' dependency graphs do not resolve together.
cp -r "$here/engine/cli" "$here/engine/plugins" "$src/"

# The upstream Terraform providers keep their provider in an internal package: copy each module
# from the Go module cache and add a small shim package, as pulumi-docker and pulumi-random do.
# Pins: the upstream commits the proxy serves for the pulumi_docker 5.2 / pulumi_random 4.21 era.
upstream() {  # upstream <name> <module@version>
  local dir
  dir="$(cd "$src/plugins" && go mod download -json "$2" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [ -n "$dir" ] || { log "the Go module proxy did not serve $2"; exit 1; }
  cp -r "$dir" "$src/plugins/upstream/$1" && chmod -R u+w "$src/plugins/upstream/$1"
  mkdir -p "$src/plugins/upstream/$1/shim" && cp "$src/plugins/_shims/$1/shim.go" "$src/plugins/upstream/$1/shim/"
}
mkdir -p "$src/plugins/upstream"
upstream docker github.com/kreuzwerker/terraform-provider-docker@v0.0.0-20260916201441-96d331c98ff4
upstream random github.com/terraform-providers/terraform-provider-random@v1.3.2-0.20260824155315-e1092b0cfc07

if [ "$mode" = --tidy ]; then
  for module in cli plugins; do
    (cd "$src/$module" && go mod tidy && cp go.mod go.sum "$here/engine/$module/")
  done
  rm -rf "$out"
  log "scripts/engine/*/go.mod and go.sum updated"
  exit 0
fi

export GOFLAGS="-mod=readonly -trimpath"
(cd "$src/cli" && go build -o "$out/bin/pulumi" \
  -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$cli_version" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
# The proxy does not serve upstream's Python language host: ours runs programs through the SDK's own
# pulumi-language-python-exec, which ships in the sdk/v3 module.
(cd "$src/cli" && go build -o "$out/bin/pulumi-language-python" -ldflags "-X main.version=$cli_version" ./language \
  && install -m 0755 "$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" "$out/bin/")
# no_compose: leave out the docker compose resources pulumi_docker does not have (as pulumi-docker).
(cd "$src/plugins" \
  && go build -tags no_compose -o "$out/bin/pulumi-resource-docker" -ldflags "-X main.version=$docker_version" ./cmd/pulumi-resource-docker \
  && go build -o "$out/bin/pulumi-resource-random" -ldflags "-X main.version=$random_version" ./cmd/pulumi-resource-random)
rm -rf "$src"
# Builds for other pins or sources are no longer needed.
find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{16}' ! -name "$key" -exec rm -rf {} +
log "built in $((SECONDS - started)) s"
echo "$out/bin"
