"""Who may pull what: declared on each view with ``@pull_access``, decided here in one place.

Unprotected repositories allow anonymous pull. Protected ones answer
``401 UNAUTHORIZED`` with a ``Bearer`` challenge until registry tokens arrive
(a later issue); ``may_pull`` is where the token check will go.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import request

from pulp_registry import oci
from pulp_registry.registry_errors import NameUnknown, Unauthorized

from crane.published import PublishedRepository
from crane.views.base import crane_state


def may_pull(repository: PublishedRepository) -> bool:
    """Anonymous callers may pull unprotected repositories only (no token support yet)."""
    return not repository.protected


def pull_challenge(name: str) -> str:
    settings = crane_state().settings
    realm = settings.token_realm or f"{request.host_url}token"
    parts = [f'realm="{realm}"']
    if settings.token_service:
        parts.append(f'service="{settings.token_service}"')
    parts.append(f'scope="repository:{name}:pull"')
    return "Bearer " + ",".join(parts)


def pull_access(view: Callable[..., Any]) -> Callable[..., Any]:
    """Validate ``name``, find its published repository and check pull access; pass the repository on."""
    @wraps(view)
    def wrapper(name: str, **kwargs: Any) -> Any:
        oci.validate_name(name)
        repository = crane_state().tree.repository(name)
        if repository is None:
            raise NameUnknown(f"repository {name} not found", detail={"name": name})
        if not may_pull(repository):
            raise Unauthorized(f"authentication required to pull from {name}",
                               detail=[{"Type": "repository", "Name": name, "Action": "pull"}],
                               headers={"WWW-Authenticate": pull_challenge(name)})
        return view(repository, **kwargs)
    return wrapper
