"""``/pulp/api/v2/orphans/``: what no repository holds, its clean-up (a task), and why a digest is kept.

Orphans are registry-wide: only super-users (or whoever is granted on this path) see or remove them.
"""
from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import orphan_explanations, orphans, tasks
from pulp_registry.access import auth_required
from pulp_registry.api.errors import InvalidBody, api_error_response
from pulp_registry.api.responses import call_report, json_body, json_response
from pulp_registry.maintenance import refused_while_read_only
from pulp_registry.permissions import EXECUTE, READ
from pulp_registry.services import current_services

blueprint = Blueprint("api_orphans", __name__)

#: The lock of clean-up tasks: two never run at once.
ORPHANS_RESOURCE = "orphans"
#: Where permissions on orphans are granted (a digest in a path is not a resource name).
ORPHANS_PATH = "/pulp/api/v2/orphans/"


@blueprint.errorhandler(orphans.OrphanError)
def _orphan_error(exc: orphans.OrphanError) -> Response:
    return api_error_response(InvalidBody(exc.message, field=exc.field))


def _grace_period(value: object) -> int:
    return orphans.validate_grace_period(value, current_services().settings.orphan_grace_period)


@blueprint.get("/orphans/")
@auth_required(READ, resource=ORPHANS_PATH)
def list_orphans() -> Response:
    """What a clean-up would remove now (``?grace_period=SECONDS``, default the setting)."""
    grace_period = _grace_period(request.args.get("grace_period"))
    return json_response(orphans.find_orphans(current_services(), grace_period))


@blueprint.post("/orphans/actions/cleanup/")
@auth_required(EXECUTE, resource=ORPHANS_PATH)
@refused_while_read_only
def cleanup() -> Response:
    """202 with the ``orphan_cleanup`` task; asked again while one waits, that one."""
    body = json_body(("grace_period",))
    grace_period = _grace_period(body.get("grace_period"))
    task = tasks.submit(current_services(), "orphan_cleanup", [ORPHANS_RESOURCE], grace_period=grace_period)
    return call_report([task])


@blueprint.get("/orphans/<digest>/")
@auth_required(READ, resource=ORPHANS_PATH)
def explain(digest: str) -> Response:
    return json_response(orphan_explanations.explain(current_services(), digest))
