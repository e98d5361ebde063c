#!/usr/bin/env bash
# Install what the tests need (Debian tools that check our generated files, Python packages, the
# Pulumi engine) and run them. Arguments go to pytest, e.g. `-m "not engine"` for a quick run.
set -euo pipefail
cd "$(dirname "$0")/.."

# promtool, amtool, redis-server, htpasswd, haproxy check our generated files; dockerd and busybox give the
# operator-command tests a real swarm (images cannot be pulled, busybox is imported).
# Debian's PostgreSQL 15 is built with OpenSSL and checks the TLS settings (pgserver's build has no TLS).
packages=(prometheus prometheus-alertmanager redis-server redis-tools apache2-utils docker.io busybox-static postgresql-15 debootstrap iproute2 gnupg haproxy)
missing=()
for tool in promtool amtool redis-server redis-cli htpasswd dockerd busybox debootstrap ip gpg gpg-agent haproxy containerd; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing Debian packages for: ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

echo "Installing the Python packages (requirements-dev.txt; a minute or so the first time)"
python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# provide VARIABLE SCRIPT WHAT: export what SCRIPT prints, unless VARIABLE is set already. Under CI
# the tests that need it must run, so a failure stops here; elsewhere they are skipped.
provide() {
  local variable="$1" script="$2" what="$3" found
  [ -n "${!variable:-}" ] && return 0
  if found="$(bash "$script")"; then
    export "$variable=$found"
  elif [ "${CI:-}" = true ]; then
    echo "error: CI runs the tests that need $what, and $script could not provide it" >&2
    exit 1
  else
    echo "warning: no $what (install Go); the tests that need it will be skipped" >&2
  fi
}
# The real Pulumi engine (-m engine): installed, downloaded, or built from Go modules and cached
# outside the repository (first build: see README).
provide NEXTCANDLE_ENGINE_BIN scripts/engine.sh "the Pulumi engine"
# A real Traefik for the edge tests, built from Go modules and cached.
provide NEXTCANDLE_TRAEFIK scripts/traefik.sh "Traefik"
# The test swarm's images of every pin (Debian packages, Go modules, declared stand-ins), cached.
provide NEXTCANDLE_IMAGES scripts/images.sh "the local images"
# The tools pip just installed (ruff, check-jsonschema, moto_server, aws) live beside the interpreter,
# which is not on PATH under pyenv and similar setups.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
export PATH
exec python3 -m pytest "$@"
