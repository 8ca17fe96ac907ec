"""What the people pages show: users with their roles, roles with their members and grants.

Plain functions over ``users.py``, ``roles.py`` and ``permissions.py`` (the same ones the REST
views of ``/pulp/api/v2/users/`` and ``/pulp/api/v2/roles/`` call), so a page shows exactly
what the API would answer; the views in ``people.py`` only check permissions and render.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pulp_registry import permissions, roles, users
from pulp_registry.db import Collections, isoformat

USERS_RESOURCE = permissions.API_ROOT + "users/"
ROLES_RESOURCE = permissions.API_ROOT + "roles/"
#: How many logins the "add a member" box suggests (a datalist of thousands helps nobody).
SUGGESTED_LOGINS = 500


def user_resource(login: str) -> str:
    return f"{USERS_RESOURCE}{login}/"


def role_resource(name: str) -> str:
    return f"{ROLES_RESOURCE}{name}/"


@dataclass(frozen=True)
class UserRow:
    login: str
    name: str
    source: str
    roles: list[str]
    ldap_roles: list[str]


@dataclass(frozen=True)
class RoleRow:
    name: str
    description: str
    builtin: bool
    members: list[str]
    grants: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Member:
    """One holder of a role, and how they hold it (by hand, from an LDAP group, or both)."""
    login: str
    name: str
    source: str
    by_hand: bool
    from_directory: bool


def user_row(user: dict[str, Any]) -> UserRow:
    shown = users.user_json(user)
    return UserRow(shown["login"], shown["name"], shown["source"], shown["roles"], shown["ldap_roles"])


def user_rows(db: Collections) -> list[UserRow]:
    return [user_row(user) for user in users.list_users(db)]


def role_row(db: Collections, role: dict[str, Any]) -> RoleRow:
    shown = roles.role_json(db, role)
    return RoleRow(shown["name"], shown["description"], shown["builtin"], shown["users"], shown["permissions"])


def role_rows(db: Collections) -> list[RoleRow]:
    return [role_row(db, role) for role in roles.list_roles(db)]


def role_members(db: Collections, name: str) -> list[Member]:
    """The holders of ``name`` with how they hold it, so the page offers "remove" only where it can work."""
    query = {"$or": [{"roles": name}, {"ldap_roles": name}]}
    found = db.users.find(query, {"name": 1, "source": 1, "roles": 1, "ldap_roles": 1}).sort("_id", 1)
    return [Member(doc["_id"], doc.get("name", ""), doc.get("source", users.LOCAL),
                   name in (doc.get("roles") or []), name in (doc.get("ldap_roles") or []))
            for doc in found]


def logins_to_suggest(db: Collections, exclude: list[str]) -> list[str]:
    """Logins for the "add a member" box's suggestions (the first few hundred, without current members)."""
    skip = set(exclude)
    found = db.users.find({}, {"_id": 1}).sort("_id", 1).limit(SUGGESTED_LOGINS + len(skip))
    return [doc["_id"] for doc in found if doc["_id"] not in skip][:SUGGESTED_LOGINS]


@dataclass(frozen=True)
class UserDetail:
    row: UserRow
    manual_roles: list[str]
    super_user: bool
    grants: list[dict[str, Any]]
    created: str | None
    updated: str | None


def user_detail(db: Collections, user: dict[str, Any]) -> UserDetail:
    """A user and what they may do, merged over their own grants and their roles' (as ``whoami`` says)."""
    shown = users.user_json(user)
    return UserDetail(user_row(user), shown["manual_roles"], permissions.is_super_user(user),
                      permissions.user_grants(db, user), isoformat(user.get("created")),
                      isoformat(user.get("updated")))
