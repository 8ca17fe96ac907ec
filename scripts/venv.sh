# Sourced by scripts/dev.sh and scripts/test.sh: the project's virtual environment.
# The caller sets PYTHON and VENV and defines say().

# ensure_venv TARGET STAMP: create $VENV if needed and `pip install -e TARGET` into it (TARGET names
# the extras: '.[all]' for dev, '.[test]' for the tests; see setup.cfg), again only
# when the package metadata changed (the install is editable, so code changes need nothing).
ensure_venv() {
    local target="$1" stamp="$VENV/$2" wanted
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        say "$PYTHON is missing or older than 3.11; install Python 3.11+ (set PYTHON=python3.11)"
        exit 1
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        say "$PYTHON cannot create virtual environments: apt-get install python3-venv"
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    wanted="$(cat setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
        say "installing $target into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e "$target"
        echo "$wanted" > "$stamp"
    fi
}
