"""Who may use the registry protocol on the admin side: declared on each view, decided in one place.

Every ``/v2/`` view carries ``@registry_access(action)`` (``pull`` or ``push``).
``authorize`` is the one function that decides; today it takes HTTP Basic
credentials of a local user, and the Bearer token flow extends it later.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from flask import g, request

from pulp_registry import oci
from pulp_registry.registry_errors import Unauthorized
from pulp_registry.users import authenticate, parse_basic_auth

PULL, PUSH = "pull", "push"
ACTIONS = (PULL, PUSH)
REALM = "pulp-registry"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}"'}

View = TypeVar("View", bound=Callable[..., Any])


def authorize(services: Any, action: str, repo_name: str | None) -> dict[str, Any]:
    """The caller, if it may do ``action`` on ``repo_name`` (None: the registry itself); else ``Unauthorized``.

    For now every authenticated local user may pull and push anywhere.
    """
    credentials = parse_basic_auth(request.headers.get("Authorization"))
    user = authenticate(services.db, *credentials) if credentials else None
    if user is None:
        message = ("authentication required: send HTTP Basic credentials"
                   if not request.headers.get("Authorization") else "invalid username or password")
        raise Unauthorized(message, headers=CHALLENGE)
    return user


def may_pull(services: Any, repo_name: str) -> bool:
    """Whether the caller of this request may pull ``repo_name`` (a mount source, say)."""
    try:
        authorize(services, PULL, repo_name)
    except Unauthorized:
        return False
    return True


def registry_access(action: str) -> Callable[[View], View]:
    """Require ``action`` on the repository named by the view's ``name`` argument, validated first."""
    if action not in ACTIONS:
        raise ValueError(f"unknown registry action {action!r} (known: {', '.join(ACTIONS)})")

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from pulp_registry.app import get_services

            repo_name = kwargs.get("name")
            g.registry_user = authorize(get_services(), action, repo_name)
            if repo_name is not None:
                oci.validate_name(repo_name)
            return view(*args, **kwargs)

        wrapper.registry_action = action  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator
