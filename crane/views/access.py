"""Who may pull what: declared on each view with ``@pull_access``, decided here in one place.

A request may pull repository R if R is unprotected and ``anonymous_pull`` is
on, or its ``Authorization: Bearer`` token (``crane.tokens``) grants ``pull``
(or ``*``) on R. For an unprotected repository with anonymous pull on, the
``Authorization`` header is not even read: a token adds nothing there, and a
fast path may answer such pulls without looking at it.

Refusals follow the Docker distribution registry's token access controller:
every one is ``401 UNAUTHORIZED`` with ``WWW-Authenticate: Bearer
realm="<token_realm>",service="<token_service>",scope="repository:<name>:pull"``
-- with ``error="invalid_token"`` when the token sent is not valid, and
``error="insufficient_scope"`` when it is valid but lacks the scope.
Distribution answers 401, not 403, for a missing scope: the challenge tells the
client which token to fetch, and the token server is what decides.

Token auth is on when ``token_public_key`` is configured (``token_realm`` and
``anonymous_pull: false`` need it). Existence is then hidden the way a
token-auth registry hides it: the registry answers 401 before revealing
anything. A name the caller may not pull answers that same 401 whether it is
protected or does not exist; only a caller allowed to pull the name learns
``NAME_UNKNOWN``. Without token auth, an unknown name answers ``NAME_UNKNOWN``
and a protected one 401.

``/v2/`` is the Docker distribution registry's in token mode: with token auth
on, it answers 401 with a challenge without scope unless the request carries a
valid token (of any access, an anonymous one included). docker and
containers/image (skopeo, podman) only fetch a token, and only use the
credentials they hold, after that first ``GET /v2/`` answered 401: a 200 there
would leave protected pulls and ``login`` without a way in. Anonymous clients
fetch an anonymous token from the realm and pull public repositories as
before; those pulls never read the token (see above). Without token auth,
``/v2/`` answers 200. The catalog lists what the caller may pull: unprotected
repositories if anonymous pull is on, plus the existing ones the token grants
pull on; every repository for a token with ``registry:catalog:*`` (the token
server gives it only to callers who may read every repository).

A miss (unknown name, manifest or blob) is answered only after the published
tree was checked for a newer version (``PublishedTree.refresh_on_miss``): with
several workers, a client's next request may reach one that has not yet
noticed the publish another one already serves.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from flask import request

from pulp_registry import oci
from pulp_registry import published_format as fmt
from pulp_registry.registry_errors import BlobUnknown, ManifestUnknown, NameUnknown, Unauthorized
from pulp_registry.registry_scopes import (CATALOG, REGISTRY, REPOSITORY, WILDCARD_ACTION, Grant,
                                           InvalidRegistryToken, bearer_token, format_scope)

from crane.config import CraneSettings
from crane.listing import paginate
from crane.published import PublishedRepository
from crane.views.base import crane_state, external_url

CATALOG_SCOPE = format_scope(REGISTRY, CATALOG, (WILDCARD_ACTION,))


def anonymous_may_pull(repository: PublishedRepository, settings: CraneSettings) -> bool:
    """True if anyone may pull ``repository`` without a token (no request state: a fast path may call it)."""
    return settings.anonymous_pull and not repository.protected


def may_pull(repository: PublishedRepository) -> bool:
    """Anonymous callers may pull unprotected repositories while anonymous pull is on."""
    return anonymous_may_pull(repository, crane_state().settings)


def hides_existence(settings: CraneSettings) -> bool:
    """With token auth on, unknown and protected names answer alike (see module doc)."""
    return settings.token_auth


def challenge(scope: str | None = None, error: str | None = None) -> str:
    """The ``WWW-Authenticate`` value sending a client to the token realm (made absolute if a path)."""
    settings = crane_state().settings
    realm = external_url(settings.token_realm) if settings.token_realm else f"{request.host_url}token"
    parts = [f'realm="{realm}"']
    if settings.token_service:
        parts.append(f'service="{settings.token_service}"')
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def unauthorized(message: str, scope: str | None, error: str | None = None) -> Unauthorized:
    detail = None
    if scope:
        kind, _, rest = scope.partition(":")
        name, _, action = rest.rpartition(":")
        detail = [{"Type": kind, "Name": name, "Action": action}]
    return Unauthorized(message, detail=detail, headers={"WWW-Authenticate": challenge(scope, error)})


def caller_grant(scope: str | None) -> Grant | None:
    """The grant of this request's Bearer token; None without one; 401 ``invalid_token`` for a bad one."""
    token = bearer_token(request.environ.get("HTTP_AUTHORIZATION"))
    if token is None:
        return None
    verifier = crane_state().verifier
    if verifier is None:
        raise unauthorized("this registry accepts no tokens (no token_public_key configured)", scope,
                           "invalid_token")
    try:
        return verifier.verify(token)
    except InvalidRegistryToken as exc:
        raise unauthorized(f"invalid token: {exc}", scope, "invalid_token") from None


def authorize_pull(name: str) -> PublishedRepository:
    """The published repository ``name`` if this request may pull it; else the registry error to answer."""
    oci.validate_name(name)
    state = crane_state()
    repository = state.tree.repository(name)
    if repository is None:
        state.tree.refresh_on_miss(name)  # published a moment ago, and another worker already serves it?
        repository = state.tree.repository(name)
    if repository is not None and anonymous_may_pull(repository, state.settings):
        return repository
    if repository is None and not hides_existence(state.settings):
        raise NameUnknown(f"repository {name} not found", detail={"name": name})
    scope = format_scope(REPOSITORY, name, ("pull",))
    grant = caller_grant(scope)
    if grant is None:
        raise unauthorized(f"authentication required to pull from {name}", scope)
    if not grant.may_pull(name):
        raise unauthorized(f"the token does not grant pull on {name}", scope, "insufficient_scope")
    if repository is None:
        raise NameUnknown(f"repository {name} not found", detail={"name": name})
    return repository


def pull_access(view: Callable[..., Any]) -> Callable[..., Any]:
    """Validate ``name``, find its published repository and check pull access; pass the repository on."""
    @wraps(view)
    def wrapper(name: str, **kwargs: Any) -> Any:
        repository = authorize_pull(name)
        try:
            return view(repository, **kwargs)
        except (ManifestUnknown, BlobUnknown):
            # A client's previous request may have been answered by a worker that already serves a
            # newer version (a tag it listed, the blob of a manifest it got): catch up, then ask again.
            tree = crane_state().tree
            tree.refresh_on_miss(name)
            if tree.repository(name) is repository:
                raise
            return view(authorize_pull(name), **kwargs)
    return wrapper


def require_registry_access() -> None:
    """``/v2/``: anyone without token auth; with it, a valid token of any access (see module doc)."""
    if not crane_state().settings.token_auth:
        return
    if caller_grant(None) is None:
        raise unauthorized("authentication required", None)


def catalog_page(n: int | None, last: str | None) -> tuple[list[str], bool]:
    """A page of the names this request may pull (the catalog), and whether more follow.

    Paged from the tree's catalog files, never from every repository: public
    names from ``catalog/public``, every name for a ``registry:catalog:*`` token
    from ``catalog/all``; a token's own grants (published ones only) are merged
    into the public names in order.
    """
    state = crane_state()
    tree = state.tree
    anonymous = state.settings.anonymous_pull
    grant = caller_grant(CATALOG_SCOPE)
    if grant is None:
        if anonymous:
            return tree.catalog(fmt.CATALOG_PUBLIC).page(last, n)
        raise unauthorized("authentication required to list repositories", CATALOG_SCOPE)
    if grant.allows(REGISTRY, CATALOG, WILDCARD_ACTION):    # given to callers who may read every repository
        return tree.catalog(fmt.CATALOG_ALL).page(last, n)
    granted = [name for name in sorted(grant.pullable())
               if (last is None or name > last) and tree.repository(name) is not None]
    if not anonymous:
        return paginate(granted, n, None)
    public, more_public = tree.catalog(fmt.CATALOG_PUBLIC).page(last, n)
    merged = sorted(set(public).union(granted))
    if n is None:
        return merged, False
    return merged[:n], n > 0 and (more_public or len(merged) > n)
