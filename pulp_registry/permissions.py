"""Pulp's permission model: operations granted on resource paths of the admin API, to users or roles.

A permission document says that a subject (a user, or a role) may do some
operations (``CREATE``, ``READ``, ``UPDATE``, ``DELETE``, ``EXECUTE``) on a
resource path such as ``/pulp/api/v2/repositories/my-app/``. A grant covers
everything below its path, so ``/`` grants everywhere and
``/pulp/api/v2/repositories/`` grants on every repository. Members of the
built-in ``super-users`` role may do everything. ``is_authorized`` is the one
function that decides; the request layer (``pulp_registry.access``) asks it.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

from pulp_registry.db import Collections, DuplicateKeyError

CREATE, READ, UPDATE, DELETE, EXECUTE = "CREATE", "READ", "UPDATE", "DELETE", "EXECUTE"
OPERATIONS = (CREATE, READ, UPDATE, DELETE, EXECUTE)
USER, ROLE = "user", "role"
SUPER_USERS = "super-users"
API_ROOT = "/pulp/api/v2/"
REPOSITORIES = API_ROOT + "repositories/"
RESOURCE_RE = re.compile(r"^/[A-Za-z0-9_.@/-]*$")
MAX_RESOURCE_LENGTH = 1024


class GrantError(ValueError):
    """A grant that cannot be made; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_resource(path: Any) -> str:
    """``/pulp/api/v2/repositories/my-app`` -> ``/pulp/api/v2/repositories/my-app/``; refuse what is not a path."""
    if not isinstance(path, str) or not path or len(path) > MAX_RESOURCE_LENGTH or not RESOURCE_RE.match(path):
        raise GrantError("resource", f"invalid resource {path!r}: an absolute path of the admin API "
                                           "such as /pulp/api/v2/repositories/my-app/")
    segments = [segment for segment in path.split("/") if segment]
    if any(segment in (".", "..") for segment in segments):
        raise GrantError("resource", f"invalid resource {path!r}: no '.' or '..' segments")
    return "/" + "".join(segment + "/" for segment in segments)


def normalize_operations(operations: Any) -> list[str]:
    """Upper-case names in the canonical order; an unknown one is an error naming it."""
    if isinstance(operations, str) or not isinstance(operations, (list, tuple)) or not operations:
        raise GrantError("operations", f"operations must be a non-empty list of {', '.join(OPERATIONS)}")
    wanted = set()
    for operation in operations:
        name = operation.upper() if isinstance(operation, str) else operation
        if name not in OPERATIONS:
            raise GrantError("operations", f"unknown operation {operation!r} (known: {', '.join(OPERATIONS)})")
        wanted.add(name)
    return [operation for operation in OPERATIONS if operation in wanted]


def ancestors(resource: str) -> list[str]:
    """``/a/b/`` -> ``["/", "/a/", "/a/b/"]``: every path whose grants cover ``resource``."""
    paths = ["/"]
    for segment in resource.strip("/").split("/"):
        if segment:
            paths.append(paths[-1] + segment + "/")
    return paths


def repository_resource(repo_id: str) -> str:
    return f"{REPOSITORIES}{repo_id}/"


def grant(db: Collections, subject_type: str, subject: str, resource: str, operations: Iterable[str]) -> dict[str, Any]:
    """Add ``operations`` on ``resource`` to what ``subject`` holds; answer the resulting permission."""
    resource = normalize_resource(resource)
    wanted = normalize_operations(list(operations))
    key = {"subject_type": subject_type, "subject": subject, "resource": resource}
    try:
        db.permissions.update_one(key, {"$addToSet": {"operations": {"$each": wanted}}}, upsert=True)
    except DuplicateKeyError:  # a concurrent grant created the document first: add to it
        db.permissions.update_one(key, {"$addToSet": {"operations": {"$each": wanted}}})
    return permission_json(db.permissions.find_one(key))


def revoke(db: Collections, subject_type: str, subject: str, resource: str, operations: Iterable[str]) -> dict[str, Any]:
    """Take ``operations`` on ``resource`` away from ``subject``; a permission left empty is removed."""
    resource = normalize_resource(resource)
    unwanted = normalize_operations(list(operations))
    key = {"subject_type": subject_type, "subject": subject, "resource": resource}
    db.permissions.update_one(key, {"$pullAll": {"operations": unwanted}})
    db.permissions.delete_one({**key, "operations": {"$size": 0}})
    left = db.permissions.find_one(key)
    return permission_json(left) if left else permission_json({**key, "operations": []})


def list_permissions(db: Collections, resource: str | None = None, subject_type: str | None = None,
                     subject: str | None = None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {}
    if resource is not None:
        query["resource"] = normalize_resource(resource)
    if subject_type is not None:
        query["subject_type"] = subject_type
    if subject is not None:
        query["subject"] = subject
    found = db.permissions.find(query).sort([("resource", 1), ("subject_type", 1), ("subject", 1)])
    return [permission_json(doc) for doc in found]


def remove_subject(db: Collections, subject_type: str, subject: str) -> None:
    """Drop every grant of a deleted user or role, so a new one of the same name starts with none."""
    db.permissions.delete_many({"subject_type": subject_type, "subject": subject})


def permission_json(doc: dict[str, Any]) -> dict[str, Any]:
    return {"resource": doc["resource"],
            "user": doc["subject"] if doc["subject_type"] == USER else None,
            "role": doc["subject"] if doc["subject_type"] == ROLE else None,
            "operations": [op for op in OPERATIONS if op in doc.get("operations", [])]}


def effective_roles(user: dict[str, Any] | None) -> list[str]:
    """Roles given by hand and roles the directory gave at the last login."""
    if user is None:
        return []
    return sorted(set(user.get("roles") or []) | set(user.get("ldap_roles") or []))


def is_super_user(user: dict[str, Any] | None) -> bool:
    return SUPER_USERS in effective_roles(user)


def _subject_query(user: dict[str, Any]) -> dict[str, Any]:
    return {"$or": [{"subject_type": USER, "subject": user["_id"]},
                    {"subject_type": ROLE, "subject": {"$in": effective_roles(user)}}]}


def is_authorized(db: Collections, user: dict[str, Any] | None, operation: str, resource: str) -> bool:
    """Whether ``user`` may do ``operation`` on ``resource``: a super-user, or a grant on it or above it."""
    if user is None:
        return False
    if is_super_user(user):
        return True
    try:
        resource = normalize_resource(resource)
    except GrantError:   # a path no grant can name (``/repositories/a b/``): refused, not a server error
        return False
    query = {**_subject_query(user), "resource": {"$in": ancestors(resource)}, "operations": operation}
    return db.permissions.find_one(query, {"_id": 1}) is not None


def user_grants(db: Collections, user: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``user`` may do, merged by resource (``whoami``): direct grants and those of their roles."""
    if is_super_user(user):
        return [{"resource": "/", "operations": list(OPERATIONS)}]
    merged: dict[str, set[str]] = {}
    for doc in db.permissions.find(_subject_query(user)):
        merged.setdefault(doc["resource"], set()).update(doc.get("operations", []))
    return [{"resource": resource, "operations": [op for op in OPERATIONS if op in ops]}
            for resource, ops in sorted(merged.items()) if ops]


def readable_below(db: Collections, user: dict[str, Any] | None, collection: str) -> bool | set[str]:
    """True if ``user`` may read all of ``collection``; else the child ids it may read (for filtered lists)."""
    if user is None:
        return set()
    if is_authorized(db, user, READ, collection):
        return True
    children: set[str] = set()
    query = {**_subject_query(user), "resource": {"$regex": "^" + re.escape(collection)}, "operations": READ}
    for doc in db.permissions.find(query, {"resource": 1}):
        child = doc["resource"][len(collection):].split("/", 1)[0]
        if child:
            children.add(child)
    return children
