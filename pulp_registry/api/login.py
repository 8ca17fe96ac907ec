"""Sessions of ``registry-admin``: log in for an API token, log out to revoke it, ask who you are."""
from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import api_tokens, permissions, users
from pulp_registry.access import API_TOKEN, BASIC, AuthenticationFailed, auth_required, current_caller
from pulp_registry.api.responses import empty_response, json_body, json_response
from pulp_registry.db import isoformat
from pulp_registry.services import current_services

blueprint = Blueprint("api_login", __name__)


@blueprint.post("/actions/login/")
@auth_required(None)
def login() -> Response:
    """An API token for the password just given (``api_token_lifetime``); a token cannot beget another."""
    json_body(())
    caller = current_caller()
    if caller.via != BASIC:
        raise AuthenticationFailed("log in with your username and password (HTTP Basic)")
    services = current_services()
    token, expires = api_tokens.issue(services.db, caller.login, services.settings.api_token_lifetime)
    return json_response({"login": caller.login, "token": token, "expires": isoformat(expires)},
                         headers={"Cache-Control": "no-store"})


@blueprint.post("/actions/logout/")
@auth_required(None)
def logout() -> Response:
    """Revoke the API token this request carries."""
    if current_caller().via != API_TOKEN:
        raise AuthenticationFailed("log out with the API token to revoke (Authorization: Bearer <token>)")
    token = request.headers["Authorization"].split(None, 1)[1].strip()
    api_tokens.revoke(current_services().db, token)
    return empty_response()


@blueprint.get("/whoami/")
@auth_required(None)
def whoami() -> Response:
    caller = current_caller()
    body = users.user_json(caller.user)
    body["permissions"] = permissions.user_grants(current_services().db, caller.user)
    return json_response(body)
