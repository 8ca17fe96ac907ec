"""``/pulp/api/v2/roles/``: roles, and who holds them (Pulp 2's role resource)."""
from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry import roles
from pulp_registry.access import auth_required
from pulp_registry.api.errors import Conflict, InvalidBody, NotFound, api_error_response
from pulp_registry.api.responses import empty_response, json_body, json_response
from pulp_registry.permissions import CREATE, DELETE, READ, UPDATE
from pulp_registry.services import current_services

blueprint = Blueprint("api_roles", __name__)


@blueprint.errorhandler(roles.RoleError)
def _role_error(exc: roles.RoleError) -> Response:
    if isinstance(exc, roles.RoleNotFound):
        return api_error_response(NotFound(exc.message))
    if isinstance(exc, (roles.RoleExists, roles.RoleConflict)):
        return api_error_response(Conflict(exc.message, field=exc.field))
    return api_error_response(InvalidBody(exc.message, field=exc.field))


def _role_response(name: str, status: int = 200) -> Response:
    db = current_services().db
    return json_response(roles.role_json(db, roles.require_role(db, name)), status)


@blueprint.post("/roles/")
@auth_required(CREATE)
def create_role() -> Response:
    body = json_body(("name", "description"), required=("name",))
    role = roles.create_role(current_services().db, body["name"], body.get("description", ""))
    response = _role_response(role["_id"], 201)
    response.headers["Location"] = f"/pulp/api/v2/roles/{role['_id']}/"
    return response


@blueprint.get("/roles/")
@auth_required(READ)
def list_roles() -> Response:
    db = current_services().db
    return json_response([roles.role_json(db, role) for role in roles.list_roles(db)])


@blueprint.get("/roles/<role>/")
@auth_required(READ)
def show_role(role: str) -> Response:
    return _role_response(role)


@blueprint.delete("/roles/<role>/")
@auth_required(DELETE)
def delete_role(role: str) -> Response:
    roles.delete_role(current_services().db, role)
    return empty_response()


@blueprint.post("/roles/<role>/users/")
@auth_required(UPDATE)
def add_role_member(role: str) -> Response:
    body = json_body(("login",), required=("login",))
    roles.add_member(current_services().db, role, body["login"])
    return _role_response(role)


@blueprint.delete("/roles/<role>/users/<login>/")
@auth_required(UPDATE)
def remove_role_member(role: str, login: str) -> Response:
    roles.remove_member(current_services().db, role, login)
    return _role_response(role)
