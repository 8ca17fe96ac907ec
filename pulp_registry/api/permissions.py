"""``/pulp/api/v2/permissions/``: who may do what where, and Pulp 2's grant and revoke actions."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import permissions, roles, users
from pulp_registry.access import auth_required
from pulp_registry.api.errors import InvalidBody, NotFound, api_error_response
from pulp_registry.api.responses import json_body, json_response
from pulp_registry.permissions import READ, ROLE, UPDATE, USER
from pulp_registry.services import current_services

blueprint = Blueprint("api_permissions", __name__)
#: Granting is changing what everyone may do: it needs UPDATE on the permissions collection itself.
PERMISSIONS_RESOURCE = "/pulp/api/v2/permissions/"


@blueprint.errorhandler(permissions.GrantError)
def _grant_error(exc: permissions.GrantError) -> Response:
    return api_error_response(InvalidBody(exc.message, field=exc.field))


@blueprint.get("/permissions/")
@auth_required(READ)
def list_permissions() -> Response:
    return json_response(permissions.list_permissions(current_services().db, request.args.get("resource")))


def _change(subject_type: str, change: Callable[..., dict]) -> Response:
    field = "login" if subject_type == USER else "role"
    body = json_body((field, "resource", "operations"), required=(field, "resource", "operations"))
    db = current_services().db
    subject = body[field]
    exists = users.get_user(db, subject) if subject_type == USER else roles.get_role(db, subject)
    if exists is None:
        raise NotFound(f"{'user' if subject_type == USER else 'role'} {subject!r} does not exist")
    return json_response(change(db, subject_type, subject, body["resource"], body["operations"]))


@blueprint.post("/permissions/actions/grant_to_user/")
@auth_required(UPDATE, resource=PERMISSIONS_RESOURCE)
def grant_to_user() -> Response:
    return _change(USER, permissions.grant)


@blueprint.post("/permissions/actions/revoke_from_user/")
@auth_required(UPDATE, resource=PERMISSIONS_RESOURCE)
def revoke_from_user() -> Response:
    return _change(USER, permissions.revoke)


@blueprint.post("/permissions/actions/grant_to_role/")
@auth_required(UPDATE, resource=PERMISSIONS_RESOURCE)
def grant_to_role() -> Response:
    return _change(ROLE, permissions.grant)


@blueprint.post("/permissions/actions/revoke_from_role/")
@auth_required(UPDATE, resource=PERMISSIONS_RESOURCE)
def revoke_from_role() -> Response:
    return _change(ROLE, permissions.revoke)
