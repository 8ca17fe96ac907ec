"""Roles and who holds them: the ``roles`` collection and the role fields of user documents.

A role bundles grants (``permissions.py``); users hold roles. Membership is
stored on the user document (``roles``: given by hand, ``ldap_roles``: from
the directory at the last login), because a user holds a few roles while a role
may have thousands of members; who holds a role is a query. This module is the
only writer of those two fields.

The built-in ``super-users`` role may do everything and never loses its last
member: every change that could take it from someone runs under a short lease
on the role's document (one conditional write), counts the other members, and
refuses to leave none.
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from datetime import timedelta
from typing import Any, Iterable, Iterator

from pulp_registry import permissions
from pulp_registry.db import Collections, DuplicateKeyError, utcnow
from pulp_registry.permissions import SUPER_USERS

log = logging.getLogger(__name__)
ROLE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
BUILTIN_ROLES = {SUPER_USERS: "May do everything; always has at least one member."}
#: How long a removal from super-users may hold the lease, and how long another waits for it.
LEASE_SECONDS = 10.0
LEASE_WAIT_SECONDS = 15.0
#: mongomock runs a "single-document atomic" write as several Python steps; serialize ours per process.
_PROCESS_GUARD = threading.RLock()


class RoleError(ValueError):
    """A request about a role that cannot be done; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class RoleExists(RoleError):
    pass


class RoleNotFound(RoleError):
    pass


class RoleConflict(RoleError):
    """The change would break a rule (delete a built-in role, leave super-users empty)."""


def ensure_builtin_roles(db: Collections) -> None:
    for name, description in BUILTIN_ROLES.items():
        db.roles.update_one({"_id": name},
                            {"$setOnInsert": {"description": description, "builtin": True, "created": utcnow()}},
                            upsert=True)


def validate_role_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not ROLE_RE.match(name):
        raise RoleError(f"invalid role name {name!r}: 1-64 of letters, digits, '_', '.', '-'", field)
    return name


def create_role(db: Collections, name: Any, description: Any = "") -> dict[str, Any]:
    validate_role_name(name)
    if not isinstance(description, str):
        raise RoleError("description must be a string", "description")
    role = {"_id": name, "description": description, "builtin": False, "created": utcnow()}
    try:
        db.roles.insert_one(role)
    except DuplicateKeyError:
        raise RoleExists(f"role {name!r} already exists", "name") from None
    return role


def get_role(db: Collections, name: str) -> dict[str, Any] | None:
    return db.roles.find_one({"_id": name}) if isinstance(name, str) else None


def require_role(db: Collections, name: str) -> dict[str, Any]:
    role = get_role(db, name)
    if role is None:
        raise RoleNotFound(f"role {name!r} does not exist")
    return role


def require_roles(db: Collections, names: Iterable[Any], field: str = "roles") -> list[str]:
    """The names, each an existing role; an unknown one is an error naming it (a typo must not pass)."""
    names = list(names)
    for name in names:
        validate_role_name(name, field)
    known = {doc["_id"] for doc in db.roles.find({"_id": {"$in": names}}, {"_id": 1})}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise RoleError(f"unknown role {unknown[0]!r}; create it first (registry-admin role create)", field)
    return sorted(set(names))


def list_roles(db: Collections) -> list[dict[str, Any]]:
    return list(db.roles.find().sort("_id", 1))


def members(db: Collections, name: str) -> list[str]:
    """Logins holding ``name``, by hand or from the directory."""
    query = {"$or": [{"roles": name}, {"ldap_roles": name}]}
    return sorted(doc["_id"] for doc in db.users.find(query, {"_id": 1}))


def role_json(db: Collections, role: dict[str, Any]) -> dict[str, Any]:
    name = role["_id"]
    return {"name": name, "description": role.get("description", ""), "builtin": bool(role.get("builtin")),
            "users": members(db, name),
            "permissions": [{"resource": grant["resource"], "operations": grant["operations"]}
                            for grant in permissions.list_permissions(db, subject_type=permissions.ROLE,
                                                                      subject=name)],
            "_href": f"/pulp/api/v2/roles/{name}/"}


@contextlib.contextmanager
def _super_users_lease(db: Collections) -> Iterator[None]:
    """Serialize removals from super-users across processes: one conditional write takes the lease."""
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while True:
        now = utcnow()
        with _PROCESS_GUARD:
            taken = db.roles.find_one_and_update(
                {"_id": SUPER_USERS, "$or": [{"changing_until": None}, {"changing_until": {"$lt": now}}]},
                {"$set": {"changing_until": now + timedelta(seconds=LEASE_SECONDS)}})
        if taken is not None:
            break
        if time.monotonic() > deadline:
            raise RoleConflict("another change of the super-users role is under way; try again")
        time.sleep(0.05)
    try:
        yield
    finally:
        db.roles.update_one({"_id": SUPER_USERS}, {"$set": {"changing_until": None}})


@contextlib.contextmanager
def keeping_a_super_user(db: Collections, login: str, stays_member: bool) -> Iterator[None]:
    """Run a change of ``login`` that may take super-users away; refuse it if nobody else would hold it."""
    if stays_member:
        yield
        return
    with _super_users_lease(db):
        holds = {"$or": [{"roles": SUPER_USERS}, {"ldap_roles": SUPER_USERS}]}
        is_member = db.users.count_documents({"_id": login, **holds}, limit=1)
        others = db.users.count_documents({"_id": {"$ne": login}, **holds}, limit=1)
        if is_member and not others:
            raise RoleConflict(f"{login!r} is the last member of {SUPER_USERS}; add another member first")
        yield


def _holds_after(user: dict[str, Any], field: str, roles_after: Iterable[str]) -> bool:
    other = "ldap_roles" if field == "roles" else "roles"
    return SUPER_USERS in set(roles_after) or SUPER_USERS in (user.get(other) or [])


def _require_user(db: Collections, login: str) -> dict[str, Any]:
    user = db.users.find_one({"_id": login}) if isinstance(login, str) else None
    if user is None:
        raise RoleNotFound(f"user {login!r} does not exist")
    return user


def add_member(db: Collections, name: str, login: str) -> None:
    """Give ``login`` the role ``name`` by hand (it then stays whatever the directory says)."""
    require_role(db, name)
    _require_user(db, login)
    db.users.update_one({"_id": login}, {"$addToSet": {"roles": name}, "$set": {"updated": utcnow()}})


def remove_member(db: Collections, name: str, login: str) -> None:
    """Take the role given by hand away from ``login`` (a role from the directory follows the directory)."""
    require_role(db, name)
    user = _require_user(db, login)
    if name not in (user.get("roles") or []):
        if name in (user.get("ldap_roles") or []):
            raise RoleConflict(f"{login!r} holds {name!r} through an LDAP group; change the group in the directory")
        raise RoleConflict(f"{login!r} does not hold role {name!r}")
    remaining = [role for role in user.get("roles") or [] if role != name]
    stays = name != SUPER_USERS or _holds_after(user, "roles", remaining)
    with keeping_a_super_user(db, login, stays):
        db.users.update_one({"_id": login}, {"$pull": {"roles": name}, "$set": {"updated": utcnow()}})


def set_directory_roles(db: Collections, login: str, roles: Iterable[str]) -> list[str]:
    """Make ``ldap_roles`` what the directory says now (unknown role names are ignored); answer them.

    If that would take super-users from its last member, the user keeps it (and a
    warning says so): a directory change must not lock every administrator out.
    """
    user = _require_user(db, login)
    wanted = sorted(set(roles))
    known = {doc["_id"] for doc in db.roles.find({"_id": {"$in": wanted}}, {"_id": 1})}
    wanted = [role for role in wanted if role in known]
    if wanted == sorted(user.get("ldap_roles") or []):
        return wanted
    losing_super = SUPER_USERS in (user.get("ldap_roles") or []) and not _holds_after(user, "ldap_roles", wanted)
    try:
        with keeping_a_super_user(db, login, not losing_super):
            db.users.update_one({"_id": login}, {"$set": {"ldap_roles": wanted, "updated": utcnow()}})
    except RoleConflict as exc:
        log.warning("directory roles of %r: %s; keeping %s", login, exc, SUPER_USERS)
        wanted = sorted({*wanted, SUPER_USERS})
        db.users.update_one({"_id": login}, {"$set": {"ldap_roles": wanted, "updated": utcnow()}})
    return wanted


def delete_role(db: Collections, name: str) -> None:
    """Delete a role, its grants and every membership of it; built-in roles stay."""
    role = require_role(db, name)
    if role.get("builtin"):
        raise RoleConflict(f"{name!r} is a built-in role and cannot be deleted")
    db.users.update_many({"$or": [{"roles": name}, {"ldap_roles": name}]},
                         {"$pull": {"roles": name, "ldap_roles": name}})
    permissions.remove_subject(db, permissions.ROLE, name)
    db.roles.delete_one({"_id": name})
