#!/usr/bin/env bash
# The test command: set up everything the tests need, then run the whole suite.
#
# On a fresh Debian or Ubuntu machine with Python 3.11+ it installs the Debian
# packages the tests drive (skopeo, umoci, podman, redis-server, rabbitmq-server,
# docker-registry, slapd, ldap-utils, wrk, nginx, docker-compose, systemd; chromium when it can, for
# the console's browser tests), creates
# the virtual environment .venv, installs the project with its `test` extra (all extras + pytest) into it, and runs `python -m pytest` (extra arguments are
# passed to pytest). The tests start their own servers (redis-server as the
# Celery broker, slapd, docker-registry, pulp-registry dev) on free 127.0.0.1
# ports and stop them. Run it again and it only runs the tests.
#
#   scripts/test.sh                      # everything
#   scripts/test.sh tests/unit -q        # a part, pytest options pass through
#   VENV=/path/to/venv PYTHON=python3.12 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
export DEBIAN_FRONTEND=noninteractive

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -E "$@"
    else
        say "need root (or sudo) to run: $*"
        exit 1
    fi
}

# --- Debian packages ----------------------------------------------------------------
debian_packages=(skopeo umoci podman redis-server rabbitmq-server docker-registry slapd ldap-utils wrk nginx docker-compose systemd)

# The venv module is a separate Debian package for the system Python.
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    python_version="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    debian_packages+=(python3-venv "python${python_version}-venv")
fi

missing=()
for package in "${debian_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing ${missing[*]} and no apt-get: install them by hand (Debian/Ubuntu names)"
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Chromium for the console's browser tests: optional (they are skipped, with the reason, without it).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q 'install ok installed' && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian package chromium (browser tests of the console)"
    as_root apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core \
        || { as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } \
        || say "could not install chromium: the console's browser tests will be skipped"
fi

# --- Python ---------------------------------------------------------------------------
. scripts/venv.sh
ensure_venv '.[test]' .pulp-registry-installed

# --- the suite ------------------------------------------------------------------------
# The venv's bin first: tests run pulp-registry, crane and registry-admin as commands.
export PATH="$PWD/$VENV/bin:$PATH"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    say "pytest collected no tests: that is a failure"
    exit 1
fi
exit "$status"
