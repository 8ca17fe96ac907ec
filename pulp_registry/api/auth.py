"""Who may call the admin REST API: declared on each view, decided in one place (Pulp 2's ``auth_required``).

Every view carries ``@auth_required(operation)``. The caller is authenticated
with HTTP Basic (``pulp_registry.users.authenticate``) and kept in
``flask.g.user``; ``is_authorized`` is the one function that decides whether
that user may do the operation on the resource path (roles extend it later).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from flask import g, request

from pulp_registry.api.errors import Forbidden, NotAuthenticated
from pulp_registry.users import authenticate, parse_basic_auth

OPERATIONS = ("create", "read", "update", "delete", "execute")
REALM = "pulp-registry"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}

View = TypeVar("View", bound=Callable[..., Any])


def is_authorized(user: dict[str, Any], operation: str, resource_path: str) -> bool:
    """Whether ``user`` may do ``operation`` on ``resource_path``. For now: every authenticated user may."""
    return user is not None and operation in OPERATIONS


def current_user() -> dict[str, Any]:
    """The authenticated user, or raise ``NotAuthenticated`` with the Basic challenge."""
    from pulp_registry.app import get_services

    credentials = parse_basic_auth(request.headers.get("Authorization"))
    if credentials is None:
        raise NotAuthenticated("authentication required: send HTTP Basic credentials", headers=CHALLENGE)
    user = authenticate(get_services().db, *credentials)
    if user is None:
        raise NotAuthenticated("invalid username or password", headers=CHALLENGE)
    return user


def auth_required(operation: str) -> Callable[[View], View]:
    """Require an authenticated user allowed to do ``operation`` on the requested path."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r} (known: {', '.join(OPERATIONS)})")

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if not is_authorized(user, operation, request.path):
                raise Forbidden(f"user {user['_id']!r} may not {operation} {request.path}")
            g.user = user
            return view(*args, **kwargs)

        wrapper.required_operation = operation  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator
