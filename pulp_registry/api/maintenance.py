"""``/pulp/api/v2/maintenance/``: read, switch on (PUT) and off (DELETE) read-only maintenance mode.

Any logged-in user may read it; changing it takes UPDATE (PUT) or DELETE on this path: super-users,
or whoever is granted there. It keeps working while the mode is on (it is how it ends).
"""
from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry import maintenance
from pulp_registry.access import auth_required, current_caller
from pulp_registry.api.errors import InvalidBody
from pulp_registry.api.responses import json_body, json_response
from pulp_registry.permissions import DELETE, UPDATE
from pulp_registry.services import current_services

blueprint = Blueprint("api_maintenance", __name__)

MAINTENANCE_PATH = "/pulp/api/v2/maintenance/"


@blueprint.get("/maintenance/")
@auth_required(None)
def show() -> Response:
    """``{"read_only": bool, "reason", "since", "user"}``, read from the database (not the cache)."""
    return json_response(maintenance.state_json(maintenance.read_only_state(current_services().db)))


@blueprint.put("/maintenance/")
@auth_required(UPDATE, resource=MAINTENANCE_PATH)
def switch_on() -> Response:
    """Body ``{"reason": "..."}``: 200 with the state and ``changed`` (false: it was on, the reason kept)."""
    body = json_body(("reason",), required=("reason",))
    try:
        reason = maintenance.validate_reason(body["reason"])
    except ValueError as exc:
        raise InvalidBody(str(exc), field="reason") from None
    db = current_services().db
    changed = maintenance.enter_read_only(db, reason, user=current_caller().login)
    return json_response({**maintenance.state_json(maintenance.read_only_state(db)), "changed": changed})


@blueprint.delete("/maintenance/")
@auth_required(DELETE, resource=MAINTENANCE_PATH)
def switch_off() -> Response:
    """200 with the state and ``changed`` (false: it was off)."""
    db = current_services().db
    changed = maintenance.leave_read_only(db)
    return json_response({**maintenance.state_json(maintenance.read_only_state(db)), "changed": changed})
