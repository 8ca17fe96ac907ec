"""``/readyz``: may a load balancer send pulls to this Crane? (``/`` is liveness, in ``base``.)

Cheap on purpose, since a load balancer asks every few seconds: it reads the
tree's small ``FORMAT`` file (format 2: a format-1 tree is unready until
``pulp-registry republish --all`` upgraded it) and stats the drain file, and
never looks at the repositories (new publishes come with the journal poll).
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, Response

from pulp_registry import published_format as fmt

from crane.config import CraneSettings
from crane.published import format_problem
from crane.views.base import crane_state, json_response

blueprint = Blueprint("health", __name__)

#: More than the ``FORMAT`` file ever holds: reading it costs one small read.
FORMAT_READ_LIMIT = 256


def tree_problem(root: Path) -> str | None:
    """Why the published tree at ``root`` cannot be served (missing, unreadable, another format), or None."""
    try:
        with open(root / fmt.FORMAT_FILE, "rb") as handle:
            text = handle.read(FORMAT_READ_LIMIT).decode("utf-8", "replace")
    except FileNotFoundError:
        if not root.is_dir():
            return f"{root} does not exist or is not a directory"
        return f"{root / fmt.FORMAT_FILE} is missing: nothing is published there (or data_dir is wrong)"
    except OSError as exc:
        return f"cannot read {root / fmt.FORMAT_FILE}: {exc.strerror or exc}"
    if text.strip() != fmt.FORMAT_TEXT.strip():
        return format_problem(root, text)   # format 1 names the upgrade: `pulp-registry republish --all`
    repositories = root / fmt.REPOSITORIES_DIR
    if os.path.lexists(repositories) and not os.access(repositories, os.R_OK | os.X_OK):
        return f"cannot read {repositories}: permission denied"
    return None


def drain_problem(settings: CraneSettings) -> str | None:
    """Set while the operator's drain file exists: this instance is being taken out of rotation."""
    if settings.drain_file and os.path.lexists(settings.drain_file):
        return f"draining: {settings.drain_file} exists"
    return None


def readiness(settings: CraneSettings, root: Path) -> dict[str, str | None]:
    """Each check's problem (None: fine), by check name."""
    return {"published_tree": tree_problem(root), "drain": drain_problem(settings)}


@blueprint.route("/readyz", methods=["GET", "HEAD"])
def readyz() -> Response:
    """200 ``{"status": "ready"}``, or 503 naming the failing checks and why."""
    state = crane_state()
    checks = readiness(state.settings, state.tree.root)
    failing = [name for name, problem in checks.items() if problem]
    headers = {"Cache-Control": "no-store"}
    if failing:
        return json_response({"status": "unready", "failing": failing,
                              "checks": {name: checks[name] for name in failing}}, 503, headers)
    return json_response({"status": "ready"}, headers=headers)
