#!/usr/bin/env bash
# Install what the tests need (Debian tools that check our generated files, Python packages, the
# Pulumi engine) and run them. Arguments go to pytest, e.g. `-m "not engine"` for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool, amtool, redis-server, htpasswd check our generated files; dockerd and busybox give the
# operator-command tests a real swarm (images cannot be pulled, busybox is imported).
# Debian's PostgreSQL 15 is built with OpenSSL and checks the TLS settings (pgserver's build has no TLS).
packages=(prometheus prometheus-alertmanager redis-server redis-tools apache2-utils docker.io busybox-static postgresql-15)
missing=()
for tool in promtool amtool redis-server redis-cli htpasswd dockerd busybox; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages for: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# The real Pulumi engine for the engine tests (-m engine): installed, downloaded, or built from Go
# modules and cached outside the repository (first build: see README). Under CI it must be there.
if [ -z "${NEXTCANDLE_ENGINE_BIN:-}" ]; then
  if engine_bin="$(bash scripts/engine.sh)"; then
    export NEXTCANDLE_ENGINE_BIN="$engine_bin"
  elif [ "${CI:-}" = true ]; then
    echo "error: CI runs the engine tests, and scripts/engine.sh could not provide the engine" >&2
    exit 1
  else
    echo "warning: no Pulumi engine (install Go or the Pulumi CLI); the engine tests will be skipped" >&2
  fi
fi
# A real Traefik for the edge tests, built from Go modules and cached (scripts/traefik.sh).
if [ -z "${NEXTCANDLE_TRAEFIK:-}" ]; then
  if traefik="$(bash scripts/traefik.sh)"; then
    export NEXTCANDLE_TRAEFIK="$traefik"
  elif [ "${CI:-}" = true ]; then
    echo "error: CI runs the Traefik tests, and scripts/traefik.sh could not build Traefik" >&2
    exit 1
  else
    echo "warning: no Traefik (install Go); the Traefik tests will be skipped" >&2
  fi
fi
# The tools pip just installed (ruff, check-jsonschema, moto_server, aws) live beside the interpreter,
# which is not on PATH under pyenv and similar setups.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
exec python3 -m pytest "$@"
