"""``GET /token`` (and OAuth2's ``POST /token``): the registry protocol's token server.

What Docker distribution's token spec (``docs/spec/auth/token.md``) describes:
a client that got ``401`` with ``WWW-Authenticate: Bearer realm=...,
service=...,scope=...`` from Crane or from ``/v2/`` here asks this endpoint for
a token, with HTTP Basic credentials or none (anonymous), and retries with
``Authorization: Bearer <token>``.

- ``service`` must name this registry (``token_service``), else ``400``;
- ``scope`` may repeat, and one value may hold several scopes separated by
  spaces; malformed scopes and invalid repository names are ignored (the token
  grants nothing for them), as distribution's token server ignores them;
- the token grants, for each scope, the actions asked for that the caller may
  do (``access.registry_actions``; ``registry:catalog:*`` with
  ``access.may_list_catalog``), never more than asked; an action not granted is
  left out and a scope with none at all is left out of the token, which is not
  an error (the registry refuses what the token lacks);
- ``account`` must be the Basic login when both are sent; ``client_id`` and
  ``offline_token`` are accepted and ignored: no refresh tokens are issued;
- bad credentials are ``401`` (the app's handler), the response is never cached.

``POST /token`` takes OAuth2's form (``docs/spec/auth/oauth.md``) with
``grant_type=password``; ``refresh_token`` grants are refused since none are
issued. Errors use distribution's token server codes (``contrib/token-server``:
``BAD_TOKEN_OPTION``, ``MISSING_REQUIRED_FIELD``, ``UNSUPPORTED_VALUE``) in the
registry's JSON error form.
"""
from __future__ import annotations

from typing import Any, Iterable

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import access, oci, users
from pulp_registry.registry.responses import json_response
from pulp_registry.registry_errors import BadTokenOption, MissingRequiredField, RegistryError, UnsupportedValue
from pulp_registry.registry_scopes import CATALOG, REGISTRY, REPOSITORY, WILDCARD_ACTION, format_scope, parse_scope
from pulp_registry.registry_tokens import access_entries, issue_token, keys_for
from pulp_registry.services import current_services

blueprint = Blueprint("registry_token", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def requested_scopes(values: Iterable[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The resources and actions asked for in ``scope`` values, one entry per resource, in request order."""
    merged: dict[tuple[str, str], list[str]] = {}
    for value in values:
        for kind, name, actions in parse_scope(value):
            wanted = merged.setdefault((kind, name), [])
            wanted.extend(action for action in actions if action not in wanted)
    return [(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]


def granted_access(services: Any, caller: access.Caller,
                   requested: Iterable[tuple[str, str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    """The ``access`` claim for ``caller``: of what was asked, what it may do (never more)."""
    granted = []
    for kind, name, actions in requested:
        if kind == REPOSITORY:
            try:
                oci.validate_name(name)
            except RegistryError:
                continue
            allowed = access.registry_actions(services, caller, name, actions)
            if WILDCARD_ACTION not in actions:
                allowed &= set(actions)
        elif kind == REGISTRY and name == CATALOG and WILDCARD_ACTION in actions:
            allowed = {WILDCARD_ACTION} if access.may_list_catalog(services, caller) else set()
        else:
            continue
        granted.append((kind, name, allowed))
    return access_entries(granted)


def check_service(service: str | None, settings: Any) -> None:
    if not service:
        raise MissingRequiredField(f"service: required; this token server issues tokens for "
                                   f"service {settings.token_service!r}")
    if service != settings.token_service:
        raise BadTokenOption(f"service: this token server issues tokens for service {settings.token_service!r}, "
                             f"not {service!r}")


def token_for(services: Any, caller: access.Caller, scopes: Iterable[str]) -> tuple[dict[str, Any], list[dict]]:
    """The token response body for ``caller`` asking for ``scopes``, and the access it grants."""
    granted = granted_access(services, caller, requested_scopes(scopes))
    token, expires_in, issued_at = issue_token(keys_for(services), services.settings, caller.login or "", granted)
    return {"token": token, "access_token": token, "expires_in": expires_in, "issued_at": issued_at}, granted


@blueprint.get("/token")
def get_token() -> Response:
    services = current_services()
    check_service(request.args.get("service"), services.settings)
    caller = access.identify_caller(services)
    if caller.via == access.REGISTRY_TOKEN:
        raise access.AuthenticationFailed("a registry token cannot be exchanged for another: "
                                          "send Basic credentials, or none for anonymous access")
    account = request.args.get("account")
    if account and caller.via == access.BASIC:
        basic_login = (users.parse_basic_auth(request.headers.get("Authorization")) or ("", ""))[0]
        if account != basic_login:
            raise BadTokenOption(f"account: {account!r} is not the login of the credentials sent")
    body, _ = token_for(services, caller, request.args.getlist("scope"))
    return json_response(body, headers=NO_STORE)


@blueprint.post("/token")
def post_token() -> Response:
    """OAuth2's password grant; the answer also names the scopes granted (``scope``), as oauth.md requires."""
    services = current_services()
    form = request.form
    grant_type = form.get("grant_type")
    if not grant_type:
        raise MissingRequiredField("grant_type: required (password)")
    check_service(form.get("service"), services.settings)
    if not form.get("client_id"):
        raise MissingRequiredField("client_id: required")
    if grant_type == "refresh_token":
        raise UnsupportedValue("grant_type: this token server issues no refresh tokens; use grant_type=password")
    if grant_type != "password":
        raise UnsupportedValue(f"grant_type: {grant_type!r} is not supported; use grant_type=password")
    if form.get("access_type", "online") not in ("online", "offline"):
        raise UnsupportedValue(f"access_type: {form.get('access_type')!r} is not online or offline")
    username, password = form.get("username"), form.get("password")
    if not username or not password:
        raise MissingRequiredField("username and password: required with grant_type=password")
    user = users.authenticate(services, username, password, address=request.remote_addr or "")
    if user is None:
        raise access.AuthenticationFailed("invalid username or password")
    caller = access.Caller(user, user["_id"], access.BASIC)
    body, granted = token_for(services, caller, [form.get("scope", "")])
    body["scope"] = " ".join(format_scope(entry["type"], entry["name"], entry["actions"]) for entry in granted)
    return json_response(body, headers=NO_STORE)
