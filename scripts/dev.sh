#!/usr/bin/env bash
# Try the registry: install it into .venv and run `pulp-registry dev --data-dir ./data`.
#
# Admin API and push on http://127.0.0.1:8080, Crane (pull) on http://127.0.0.1:5000.
# Extra arguments go to `pulp-registry dev`, e.g.
#   scripts/dev.sh --admin-password secret --api-port 8081
# Needs Python 3.11+ (PYTHON=python3.12 to choose one). Metadata is kept in memory
# unless --mongo-url is given; content stays in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

say() { printf 'scripts/dev.sh: %s\n' "$*" >&2; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "$PYTHON is missing or older than 3.11; install Python 3.11+ (set PYTHON=python3.11)"
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    say "$PYTHON cannot create virtual environments: sudo apt-get install python3-venv"
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.pulp-registry-installed-dev"
wanted="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    say "installing pulp-registry into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e .
    echo "$wanted" > "$stamp"
fi

export PATH="$PWD/$VENV/bin:$PATH"
exec "$VENV/bin/pulp-registry" dev --data-dir ./data "$@"
