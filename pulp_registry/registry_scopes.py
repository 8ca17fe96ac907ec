"""The pure half of registry tokens: scopes, the ``access`` claim, what a verified token grants.

Split from ``pulp_registry.registry_tokens`` (keys, signing, verifying with PyJWT and
cryptography) so that Crane answers its first request without importing those:
it needs them only when ``token_public_key`` is set. The grammar is the Docker
distribution registry's (``docs/spec/auth/scope.md``, ``token.md``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

WILDCARD_ACTION = "*"
REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"
#: Actions by ``(type, name)``: what a token grants.
Access = Mapping[tuple[str, str], frozenset[str]]


class InvalidRegistryToken(Exception):
    """A Bearer token that is not a valid token of this issuer; the message says why."""


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: actions by ``(type, name)``."""

    subject: str
    access: Access = field(default_factory=dict)

    def allows(self, resource_type: str, name: str, action: str) -> bool:
        actions = self.access.get((resource_type, name), frozenset())
        return WILDCARD_ACTION in actions or action in actions

    def may_pull(self, name: str) -> bool:
        return self.allows(REPOSITORY, name, "pull")

    def pullable(self) -> frozenset[str]:
        """Repository names this token may pull (for the catalog)."""
        return frozenset(name for (kind, name), actions in self.access.items()
                         if kind == REPOSITORY and ("pull" in actions or WILDCARD_ACTION in actions))


def parse_access(claim: Any) -> dict[tuple[str, str], frozenset[str]]:
    """The ``access`` claim as actions by ``(type, name)``; raise ``InvalidRegistryToken`` if malformed."""
    if claim is None:
        return {}
    if not isinstance(claim, list):
        raise InvalidRegistryToken("access claim is not a list")
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claim:
        if not isinstance(entry, dict):
            raise InvalidRegistryToken("access claim entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list) \
                or not all(isinstance(action, str) for action in actions):
            raise InvalidRegistryToken("access claim entry needs string type and name and a list of actions")
        kind = resource_type(kind)
        access[(kind, name)] = access.get((kind, name), frozenset()) | frozenset(actions)
    return access


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for no header or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# --- scopes -----------------------------------------------------------------------------------------

RESOURCE_TYPE_RE = re.compile(r"^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$")
ACTION_RE = re.compile(r"^[a-z*]+$")


def resource_type(value: str) -> str:
    """``repository(plugin)`` -> ``repository``: distribution ignores the (deprecated) resource class."""
    match = RESOURCE_TYPE_RE.match(value)
    return match.group(1) if match else value


def parse_scope(scope: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(type, name, actions)`` for each resource scope in ``scope`` (space-separated, scope.md's grammar).

    ``repository:my/app:pull,push``, ``repository(plugin):name:pull`` (the class
    is dropped), ``registry:catalog:*``; a name may hold a ``host:port/``
    prefix, so the type ends at the first ``:`` and the actions start after
    the last one. Malformed scopes are ignored, as distribution's token server
    does (``contrib/token-server``, ``ResolveScopeSpecifiers``: "Ignore malformed
    scope specifiers"): a token request is never refused for its scope, the
    token just grants nothing for it. Names are checked by the caller.
    """
    parsed = []
    for resource_scope in scope.split():
        kind, _, rest = resource_scope.partition(":")
        name, separator, actions = rest.rpartition(":")
        if not separator or not name or not RESOURCE_TYPE_RE.match(kind):
            continue
        wanted = tuple(dict.fromkeys(action for action in actions.split(",") if ACTION_RE.match(action)))
        if wanted:
            parsed.append((resource_type(kind), name, wanted))
    return parsed


def format_scope(kind: str, name: str, actions: Iterable[str]) -> str:
    """``repository:my/app:pull,push``: a resource scope as challenges and ``/token`` requests write it."""
    return f"{kind}:{name}:{','.join(actions)}"
