"""Who may do what on one repository: grants on its resource or above, and what they add up to per user.

``permissions.is_authorized`` decides from grants on the resource or any ancestor path
(``/``, ``/pulp/api/v2/``, ``/pulp/api/v2/repositories/``...), to a user or to a role the
user holds, and lets members of ``super-users`` do everything. This module reads the same
grants the same way, so the page answers the question the API would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulp_registry import permissions
from pulp_registry.db import Collections
from pulp_registry.permissions import OPERATIONS, SUPER_USERS

#: What each operation allows on a repository (for the page's legend).
OPERATION_MEANINGS = {
    permissions.CREATE: "create repositories (a grant on the collection; a push may create one)",
    permissions.READ: "see the repository and pull from it, protected or not",
    permissions.UPDATE: "push, and change its settings and feed",
    permissions.DELETE: "delete tags, manifests or the repository",
    permissions.EXECUTE: "sync and publish it",
}


@dataclass(frozen=True)
class Grant:
    """One permission document that covers the repository."""
    subject_type: str
    subject: str
    resource: str
    operations: list[str]
    on_repository: bool  # False: inherited from a path above it


@dataclass(frozen=True)
class EffectiveAccess:
    """What one user may do on the repository, and where it comes from."""
    login: str
    source: str
    operations: list[str]
    through: list[str]  # "own grant", role names, or "super-users"


@dataclass(frozen=True)
class RepositoryAccess:
    resource: str
    grants: list[Grant]
    users: list[EffectiveAccess]


def _ordered(operations: set[str]) -> list[str]:
    return [operation for operation in OPERATIONS if operation in operations]


def covering_grants(db: Collections, resource: str) -> list[Grant]:
    """Every grant on ``resource`` or a path above it, the nearest path last."""
    found = []
    for path in permissions.ancestors(resource):
        for doc in permissions.list_permissions(db, resource=path):
            subject_type = permissions.USER if doc["user"] is not None else permissions.ROLE
            found.append(Grant(subject_type, doc["user"] or doc["role"], doc["resource"], doc["operations"],
                               doc["resource"] == resource))
    return found


def repository_access(db: Collections, repo_id: str) -> RepositoryAccess:
    """The grants covering the repository, and each user's effective operations (super-users: all)."""
    resource = permissions.repository_resource(repo_id)
    grants = covering_grants(db, resource)
    by_role: dict[str, set[str]] = {}
    by_user: dict[str, set[str]] = {}
    for grant in grants:
        target = by_user if grant.subject_type == permissions.USER else by_role
        target.setdefault(grant.subject, set()).update(grant.operations)
    role_names = sorted({*by_role, SUPER_USERS})
    query = {"$or": [{"_id": {"$in": sorted(by_user)}}, {"roles": {"$in": role_names}},
                     {"ldap_roles": {"$in": role_names}}]}
    rows = []
    for user in db.users.find(query, {"source": 1, "roles": 1, "ldap_roles": 1}).sort("_id", 1):
        rows.append(_effective(user, by_user.get(user["_id"], set()), by_role))
    return RepositoryAccess(resource, grants, [row for row in rows if row.operations])


def _effective(user: dict[str, Any], own: set[str], by_role: dict[str, set[str]]) -> EffectiveAccess:
    held = permissions.effective_roles(user)
    if SUPER_USERS in held:
        return EffectiveAccess(user["_id"], user.get("source", "local"), list(OPERATIONS), [SUPER_USERS])
    operations = set(own)
    through = ["own grant"] if own else []
    for role in held:
        if by_role.get(role):
            operations |= by_role[role]
            through.append(role)
    return EffectiveAccess(user["_id"], user.get("source", "local"), _ordered(operations), through)
