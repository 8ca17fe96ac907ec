"""Users: local ones with bcrypt hashes, directory ones created at their first LDAP login.

``authenticate`` is the one place that decides who a caller is, for the REST
API, the push endpoints and the token endpoint alike. A local user is checked
against its bcrypt hash and never against the directory, so a directory entry
of the same name cannot shadow it; any other login goes to the directory when
one is configured. Role membership is written by ``roles.py``.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from typing import Any, Mapping

import bcrypt

from pulp_registry import api_tokens, login_limits, permissions
from pulp_registry import roles as role_store
from pulp_registry.db import Collections, DuplicateKeyError, isoformat, utcnow

log = logging.getLogger(__name__)

LOGIN_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: bcrypt hashes only the first 72 bytes; longer passwords would silently collide.
MAX_PASSWORD_BYTES = 72
#: bcrypt's work factor for new hashes (each check then costs ~0.25 s here, by design).
BCRYPT_ROUNDS = 12
LOCAL, LDAP = "local", "ldap"
UPDATABLE_FIELDS = ("password", "name", "add_roles", "remove_roles")


class UserError(ValueError):
    """A login, password or change that cannot be used; the message says why, ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UserExists(UserError):
    pass


class UserNotFound(UserError):
    pass


def validate_password(password: Any) -> str:
    if not isinstance(password, str) or not password:
        raise UserError("password must be a non-empty string", "password")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise UserError(f"password is longer than {MAX_PASSWORD_BYTES} bytes", "password")
    return password


def hash_password(password: Any, rounds: int = BCRYPT_ROUNDS) -> str:
    return bcrypt.hashpw(validate_password(password).encode(), bcrypt.gensalt(rounds)).decode()


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def validate_login(login: Any) -> str:
    if not isinstance(login, str) or not LOGIN_RE.match(login):
        raise UserError(f"invalid login {login!r}: 1-64 of letters, digits, '_', '.', '@', '-'", "login")
    return login


def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or len(name) > 256:
        raise UserError("name must be a string of at most 256 characters", "name")
    return name


def create_user(db: Collections, login: Any, password: Any, name: Any = "", roles: Any = None,
                rounds: int = BCRYPT_ROUNDS) -> dict[str, Any]:
    """A local user holding ``roles`` (each must exist)."""
    validate_login(login)
    _validate_name(name)
    if roles is not None and (isinstance(roles, str) or not isinstance(roles, (list, tuple))):
        raise UserError("roles must be a list of role names", "roles")
    try:
        held = role_store.require_roles(db, roles or [])
    except role_store.RoleError as exc:
        raise UserError(exc.message, "roles") from None
    now = utcnow()
    user = {"_id": login, "source": LOCAL, "name": name, "password_hash": hash_password(password, rounds),
            "roles": held, "ldap_roles": [], "created": now, "updated": now}
    try:
        db.users.insert_one(user)
    except DuplicateKeyError:
        raise UserExists(f"user {login!r} already exists", "login") from None
    return user


def get_user(db: Collections, login: Any) -> dict[str, Any] | None:
    return db.users.find_one({"_id": login}) if isinstance(login, str) else None


def require_user(db: Collections, login: str) -> dict[str, Any]:
    user = get_user(db, login)
    if user is None:
        raise UserNotFound(f"user {login!r} does not exist")
    return user


def list_users(db: Collections) -> list[dict[str, Any]]:
    return list(db.users.find().sort("_id", 1))


def set_password(db: Collections, login: str, password: str, rounds: int = BCRYPT_ROUNDS) -> bool:
    """A new password; every API token of the user ends with the old one."""
    user = require_user(db, login)
    if user.get("source", LOCAL) != LOCAL:
        raise UserError(f"{login!r} is a directory user: change the password in the directory", "password")
    changed = db.users.update_one({"_id": login, "source": {"$in": [LOCAL, None]}},
                                  {"$set": {"password_hash": hash_password(password, rounds),
                                            "updated": utcnow()}}).matched_count == 1
    _verified.forget(login)
    api_tokens.revoke_all(db, login)
    return changed


def update_user(db: Collections, login: str, delta: Any, rounds: int = BCRYPT_ROUNDS) -> dict[str, Any]:
    """Apply ``{"password"?, "name"?, "add_roles"?, "remove_roles"?}``; checked whole before anything changes."""
    user = require_user(db, login)
    if not isinstance(delta, Mapping):
        raise UserError("delta must be an object", "delta")
    for field in delta:
        if field not in UPDATABLE_FIELDS:
            raise UserError(f"unknown field {field!r}; allowed: {', '.join(UPDATABLE_FIELDS)}", field)
    changes: dict[str, list[str]] = {}
    for field in ("add_roles", "remove_roles"):
        value = delta.get(field, [])
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise UserError(f"{field} must be a list of role names", field)
        try:
            changes[field] = role_store.require_roles(db, value, field)
        except role_store.RoleError as exc:
            raise UserError(exc.message, field) from None
    for role in changes["remove_roles"]:
        if role not in (user.get("roles") or []):
            raise UserError(f"{login!r} does not hold role {role!r} by hand", "remove_roles")
    if "name" in delta:
        _validate_name(delta["name"])
    if "password" in delta:
        validate_password(delta["password"])
        if user.get("source", LOCAL) != LOCAL:
            raise UserError(f"{login!r} is a directory user: change the password in the directory", "password")
    for role in changes["remove_roles"]:
        role_store.remove_member(db, role, login)
    for role in changes["add_roles"]:
        role_store.add_member(db, role, login)
    if "name" in delta:
        db.users.update_one({"_id": login}, {"$set": {"name": delta["name"], "updated": utcnow()}})
    if "password" in delta:
        set_password(db, login, delta["password"], rounds)
    return require_user(db, login)


def delete_user(db: Collections, login: str) -> None:
    """Remove a user, their direct grants and their API tokens; never the last super-user."""
    user = require_user(db, login)
    with role_store.keeping_a_super_user(db, login, stays_member=not permissions.is_super_user(user)):
        db.users.delete_one({"_id": login})
    permissions.remove_subject(db, permissions.USER, login)
    api_tokens.revoke_all(db, login)
    _verified.forget(login)


def user_json(user: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a user: never a hash or a password."""
    return {"login": user["_id"], "name": user.get("name", ""), "source": user.get("source", LOCAL),
            "roles": permissions.effective_roles(user), "manual_roles": sorted(user.get("roles") or []),
            "ldap_roles": sorted(user.get("ldap_roles") or []), "created": isoformat(user.get("created")),
            "updated": isoformat(user.get("updated")), "_href": f"/pulp/api/v2/users/{user['_id']}/"}


def directory_user_logged_in(db: Collections, directory_user: Any) -> dict[str, Any]:
    """Create the local record of a directory user at first login; make its roles follow the directory."""
    now = utcnow()
    try:
        db.users.update_one({"_id": directory_user.login},
                            {"$setOnInsert": {"source": LDAP, "password_hash": None, "roles": [], "ldap_roles": [],
                                              "created": now},
                             "$set": {"name": directory_user.name, "ldap_dn": directory_user.dn, "updated": now}},
                            upsert=True)
    except DuplicateKeyError:  # created by a concurrent login a moment ago
        pass
    role_store.set_directory_roles(db, directory_user.login, directory_user.roles)
    return require_user(db, directory_user.login)


class _VerifiedCredentials:
    """Credentials accepted recently, so a push is not one bcrypt check or LDAP bind per request.

    Keys are HMACs under a key made at start-up, so the memory of a process holds
    no password or plain hash of one; an entry is tied to the stored password hash
    it matched (a changed password misses at once, in every process) and lives
    ``credential_cache_seconds``.
    """

    ENTRIES = 1024

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._entries: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()

    def _key(self, login: str, password: str) -> str:
        return hmac.new(self._secret, f"{login}\0{password}".encode(), hashlib.sha256).hexdigest()

    def matches(self, login: str, password: str, stamp: str) -> bool:
        with self._lock:
            entry = self._entries.get(self._key(login, password))
        return entry is not None and hmac.compare_digest(entry[1], stamp) and entry[2] > time.monotonic()

    def remember(self, login: str, password: str, stamp: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.ENTRIES:
                self._entries.clear()
            self._entries[self._key(login, password)] = (login, stamp, time.monotonic() + seconds)

    def forget(self, login: str) -> None:
        with self._lock:
            for key in [key for key, entry in self._entries.items() if entry[0] == login]:
                del self._entries[key]


_verified = _VerifiedCredentials()


@functools.lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> bytes:
    """Checked for unknown logins at the configured cost, so refusing one takes as long as a wrong password."""
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))


def _bcrypt_matches(password: str, stored: bytes) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], stored)
    except ValueError:
        return False


def _stamp(user: dict[str, Any]) -> str:
    """What a remembered credential is tied to: the local hash, or the directory user's DN."""
    return user.get("password_hash") or f"ldap:{user.get('ldap_dn', '')}"


def authenticate(services: Any, login: str, password: str, address: str = "") -> dict[str, Any] | None:
    """The user if ``password`` is theirs, else None; failures are counted, logged and rate-limited.

    Raises ``login_limits.TooManyFailures`` while the login or address is over the
    limit, and ``ldap_auth.DirectoryUnavailable`` when a directory user cannot be checked.
    """
    db, settings = services.db, services.settings
    if not isinstance(login, str) or not isinstance(password, str):
        return None
    user = get_user(db, login)
    if user is not None and _verified.matches(login, password, _stamp(user)):
        return user
    login_limits.check(db, settings, login, address)
    checked_hash = False
    verified: dict[str, Any] | None = None
    if user is not None and user.get("source", LOCAL) == LOCAL:
        checked_hash = True
        if _bcrypt_matches(password, user["password_hash"].encode()):
            verified = user
    elif settings.ldap.enabled and password and LOGIN_RE.match(login) and login == login.lower():
        # Directory logins are matched without regard to case; one spelling keeps one local record.
        from pulp_registry import ldap_auth

        directory_user = ldap_auth.directory_login(settings.ldap, login, password)
        if directory_user is not None:
            verified = directory_user_logged_in(db, directory_user)
    if verified is None:
        if not checked_hash:
            _bcrypt_matches(password, _dummy_hash(settings.bcrypt_rounds))
        login_limits.record_failure(db, settings, login, address)
        log.warning("failed login for %r from %s", login[:64], address or "unknown address")
        return None
    login_limits.clear_login(db, login)
    _verified.remember(login, password, _stamp(verified), settings.credential_cache_seconds)
    return verified


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    """``(login, password)`` from an ``Authorization: Basic ...`` header, or None."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    login, sep, password = decoded.partition(":")
    return (login, password) if sep else None
