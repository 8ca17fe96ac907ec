"""``/pulp/api/v2/users/``: create, list, show, update and delete users (Pulp 2's user resource)."""
from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry import roles, users
from pulp_registry.access import auth_required
from pulp_registry.api.errors import Conflict, InvalidBody, NotFound, api_error_response
from pulp_registry.api.responses import empty_response, json_body, json_response
from pulp_registry.permissions import CREATE, DELETE, READ, UPDATE
from pulp_registry.services import current_services

blueprint = Blueprint("api_users", __name__)


@blueprint.errorhandler(users.UserError)
@blueprint.errorhandler(roles.RoleError)
def _user_error(exc: users.UserError | roles.RoleError) -> Response:
    if isinstance(exc, (users.UserNotFound, roles.RoleNotFound)):
        return api_error_response(NotFound(exc.message))
    if isinstance(exc, (users.UserExists, roles.RoleExists, roles.RoleConflict)):
        return api_error_response(Conflict(exc.message, field=exc.field))
    return api_error_response(InvalidBody(exc.message, field=exc.field))


@blueprint.post("/users/")
@auth_required(CREATE)
def create_user() -> Response:
    body = json_body(("login", "password", "name", "roles"), required=("login", "password"))
    services = current_services()
    user = users.create_user(services.db, body["login"], body["password"], name=body.get("name", ""),
                             roles=body.get("roles"), rounds=services.settings.bcrypt_rounds)
    return json_response(users.user_json(user), 201, {"Location": users.user_json(user)["_href"]})


@blueprint.get("/users/")
@auth_required(READ)
def list_users() -> Response:
    return json_response([users.user_json(user) for user in users.list_users(current_services().db)])


@blueprint.get("/users/<login>/")
@auth_required(READ)
def show_user(login: str) -> Response:
    return json_response(users.user_json(users.require_user(current_services().db, login)))


@blueprint.put("/users/<login>/")
@auth_required(UPDATE)
def update_user(login: str) -> Response:
    body = json_body(("delta",), required=("delta",))
    services = current_services()
    user = users.update_user(services.db, login, body["delta"], rounds=services.settings.bcrypt_rounds)
    return json_response(users.user_json(user))


@blueprint.delete("/users/<login>/")
@auth_required(DELETE)
def delete_user(login: str) -> Response:
    users.delete_user(current_services().db, login)
    return empty_response()
