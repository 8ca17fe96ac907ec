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

. scripts/venv.sh
ensure_venv '.[all]' .pulp-registry-installed-dev   # admin side + Crane (setup.cfg extras)

export PATH="$PWD/$VENV/bin:$PATH"
exec "$VENV/bin/pulp-registry" dev --data-dir ./data "$@"
