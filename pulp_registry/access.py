"""Who is calling and what they may do, for both surfaces of the admin side: declared on each view, decided here.

Every REST view carries ``@auth_required(OPERATION)`` (the resource is the
request path) and every ``/v2/`` view ``@auth_required(PULL|PUSH|DELETE,
repository="name")``. The caller is identified once per request from
``Authorization``:

- ``Basic``: a local or directory user (``users.authenticate``);
- ``Bearer prt_...``: an API token of ``registry-admin login``;
- ``Bearer <JWT>``: a registry token from ``/token`` (``/v2/`` only), which
  grants exactly what its ``access`` claim says;
- nothing: anonymous.

Registry actions map to the permission model: pull needs READ on the
repository (anyone may pull an unprotected one while ``anonymous_pull`` is on,
any logged-in user when it is off), push needs UPDATE (and CREATE on the
repositories collection when the push creates the repository), delete needs
DELETE. Refusals raise ``AuthenticationFailed`` or ``AccessDenied``; the app
renders them in the error form of the surface they were aimed at.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, TypeVar

from flask import g, request

from pulp_registry import api_tokens, maintenance, oci, permissions, users
from pulp_registry.permissions import CREATE, DELETE, OPERATIONS, READ, REPOSITORIES, UPDATE
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.services import current_services

PULL, PUSH, REMOVE = "pull", "push", "delete"
REGISTRY_ACTIONS = (PULL, PUSH, REMOVE)
WILDCARD = "*"
ANONYMOUS, BASIC, API_TOKEN, REGISTRY_TOKEN = "anonymous", "basic", "api-token", "registry-token"

View = TypeVar("View", bound=Callable[..., Any])


class AuthenticationFailed(Exception):
    """No credentials where they are needed, or credentials that are not valid."""

    def __init__(self, message: str, invalid_token: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.invalid_token = invalid_token


class AccessDenied(Exception):
    """A known caller (or anonymous) without the permission; ``scope`` is the registry scope it lacked."""

    def __init__(self, message: str, caller: "Caller", scope: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.caller = caller
        self.scope = scope


@dataclass(frozen=True)
class Caller:
    user: dict[str, Any] | None
    login: str | None
    via: str
    #: What a registry token grants: actions by ``(type, name)`` (only for ``via == REGISTRY_TOKEN``).
    grant: Mapping[tuple[str, str], frozenset[str]] | None = None

    @property
    def anonymous(self) -> bool:
        return self.via == ANONYMOUS


def identify_caller(services: Any) -> Caller:
    """The caller of this request (computed once per request); ``AuthenticationFailed`` for bad credentials."""
    if "caller" in g:
        return g.caller
    caller = _identify(services, request.headers.get("Authorization"))
    g.caller = caller
    return caller


def _identify(services: Any, authorization: str | None) -> Caller:
    if not authorization:
        return Caller(None, None, ANONYMOUS)
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "basic":
        parsed = users.parse_basic_auth(authorization)
        user = users.authenticate(services, *parsed, address=request.remote_addr or "") if parsed else None
        if user is None:
            raise AuthenticationFailed("invalid username or password")
        return Caller(user, user["_id"], BASIC)
    if scheme.lower() == "bearer" and credentials:
        if api_tokens.is_api_token(credentials):
            login = api_tokens.resolve(services.db, credentials)
            user = users.get_user(services.db, login) if login else None
            if user is None:
                raise AuthenticationFailed("the API token is not valid (expired, revoked, or unknown); log in again",
                                           invalid_token=True)
            return Caller(user, user["_id"], API_TOKEN)
        from pulp_registry import registry_tokens

        try:
            subject, grant = registry_tokens.verify_token(registry_tokens.keys_for(services), services.settings,
                                                          credentials)
        except registry_tokens.InvalidRegistryToken as exc:
            raise AuthenticationFailed(f"invalid token: {exc}", invalid_token=True) from None
        return Caller(None, subject or None, REGISTRY_TOKEN, grant)
    raise AuthenticationFailed(f"unsupported authorization scheme {scheme!r}: send Basic credentials or a token")


# --- decisions ---------------------------------------------------------------------------


def repository_resource_of(services: Any, repo_name: str) -> tuple[dict[str, Any] | None, str]:
    """The repository called ``repo_name`` (or None) and the resource path its permissions are granted on.

    A repository that does not exist yet is named by the id a push would give it
    (``my/app`` -> ``my-app``), so a grant made before the first push applies to it.
    """
    repo = find_repository_by_name(services.db, repo_name)
    repo_id = repo["_id"] if repo else repo_name.replace("/", "-")
    return repo, permissions.repository_resource(repo_id)


def registry_actions(services: Any, caller: Caller, repo_name: str, requested: Iterable[str]) -> set[str]:
    """The requested registry actions (``*`` for all) that ``caller`` may do on ``repo_name``."""
    wanted = set(REGISTRY_ACTIONS) if WILDCARD in set(requested) else set(requested) & set(REGISTRY_ACTIONS)
    if not wanted:
        return set()
    repo, resource = repository_resource_of(services, repo_name)
    if caller.via == REGISTRY_TOKEN:
        granted = (caller.grant or {}).get(("repository", repo_name), frozenset())
        allowed = set(REGISTRY_ACTIONS) if WILDCARD in granted else set(granted)
        if PULL in wanted and _public(services, repo, caller):
            allowed.add(PULL)
        return wanted & allowed
    allowed = set()
    db, user = services.db, caller.user
    if PULL in wanted and (_public(services, repo, caller) or permissions.is_authorized(db, user, READ, resource)):
        allowed.add(PULL)
    if PUSH in wanted and permissions.is_authorized(db, user, UPDATE, resource) and (
            repo is not None or permissions.is_authorized(db, user, CREATE, REPOSITORIES)):
        allowed.add(PUSH)
    if REMOVE in wanted and permissions.is_authorized(db, user, DELETE, resource):
        allowed.add(REMOVE)
    return allowed


def _public(services: Any, repo: dict[str, Any] | None, caller: Caller) -> bool:
    """An unprotected repository: anyone may pull it, or any logged-in caller when anonymous pull is off."""
    if repo is None or repo.get("protected"):
        return False
    return services.settings.anonymous_pull or not caller.anonymous


def may_list_catalog(services: Any, caller: Caller) -> bool:
    """The whole catalog for callers who may read every repository."""
    return caller.user is not None and permissions.is_authorized(services.db, caller.user, READ, REPOSITORIES)


def may(services: Any, caller: Caller, action: str, repo_name: str) -> bool:
    return action in registry_actions(services, caller, repo_name, [action])


def readable_repositories(services: Any, caller: Caller) -> bool | set[str]:
    """True if the caller may read every repository; else the ids it may read (filtered listings)."""
    return permissions.readable_below(services.db, caller.user, REPOSITORIES)


# --- the decorator -----------------------------------------------------------------------


def _scope(repo_name: str, action: str) -> str:
    # Clients that push ask for pull too (they check which blobs exist); ask for what they need.
    actions = {PULL: "pull", PUSH: "pull,push", REMOVE: "delete"}[action]
    return f"repository:{repo_name}:{actions}"


def check_api(operation: str, resource: str | None = None) -> Caller:
    """The caller, if a user who may do ``operation`` on ``resource`` (default: the request path)."""
    services = current_services()
    caller = identify_caller(services)
    if caller.user is None:
        if caller.via == REGISTRY_TOKEN:
            raise AuthenticationFailed("registry tokens are for /v2/; send Basic credentials or an API token")
        raise AuthenticationFailed("authentication required: send HTTP Basic credentials or an API token")
    resource = resource or request.path
    if not permissions.is_authorized(services.db, caller.user, operation, resource):
        raise AccessDenied(f"user {caller.login!r} may not {operation} {resource}", caller)
    return caller


def check_registry(action: str, repo_name: str | None) -> Caller:
    """The caller, if it may do ``action`` on ``repo_name`` (None: the registry itself, any valid caller)."""
    services = current_services()
    caller = identify_caller(services)
    if repo_name is None:
        if caller.anonymous:
            raise AuthenticationFailed("authentication required")
        return caller
    oci.validate_name(repo_name)
    if not may(services, caller, action, repo_name):
        message = (f"authentication required to {action} {repo_name}" if caller.anonymous
                   else f"{caller.login or 'this token'} may not {action} {repo_name}")
        raise AccessDenied(message, caller, _scope(repo_name, action))
    return caller


def auth_required(operation: str | None, repository: str | None = None,
                  resource: str | None = None) -> Callable[[View], View]:
    """Declare what a view needs: an API operation on the request path (or ``resource``), a registry
    action on the repository named by the view argument ``repository``, or (``None``) only a logged-in user.
    """
    if repository is not None and operation not in REGISTRY_ACTIONS:
        raise ValueError(f"unknown registry action {operation!r} (known: {', '.join(REGISTRY_ACTIONS)})")
    if operation is not None and operation not in OPERATIONS + REGISTRY_ACTIONS:
        raise ValueError(f"unknown operation {operation!r} (known: {', '.join(OPERATIONS + REGISTRY_ACTIONS)})")

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if repository is not None or operation in REGISTRY_ACTIONS:
                check_registry(operation, kwargs.get(repository) if repository else None)
                if operation in (PUSH, REMOVE):  # a change of content: refused in maintenance mode
                    maintenance.refuse_when_read_only(current_services().db)
            elif operation is None:
                check_api_login()
            else:
                check_api(operation, resource)
            return view(*args, **kwargs)

        wrapper.required_operation = operation or "login"  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def check_api_login() -> Caller:
    """Any logged-in user (what they then see is filtered by the view)."""
    caller = identify_caller(current_services())
    if caller.user is None:
        raise AuthenticationFailed("authentication required: send HTTP Basic credentials or an API token")
    return caller


def current_caller() -> Caller:
    """The caller the decorator identified for this request."""
    return g.caller
