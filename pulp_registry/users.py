"""Local users: bcrypt password hashes in the ``users`` collection.

LDAP and roles come later; ``authenticate`` is the one place that decides who a
caller is, for the REST API and the push endpoints alike.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import threading
import time
from typing import Any

import bcrypt

from pulp_registry.db import Collections, DuplicateKeyError, utcnow

LOGIN_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: bcrypt hashes only the first 72 bytes; longer passwords would silently collide.
MAX_PASSWORD_BYTES = 72
#: bcrypt's work factor for new hashes (each check then costs ~0.25 s here, by design).
BCRYPT_ROUNDS = 12


class UserError(ValueError):
    """A login or password that cannot be used; the message says why."""


class UserExists(UserError):
    pass


def hash_password(password: str, rounds: int = BCRYPT_ROUNDS) -> str:
    encoded = password.encode()
    if not encoded:
        raise UserError("password must not be empty")
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise UserError(f"password is longer than {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(rounds)).decode()


def create_user(db: Collections, login: str, password: str, name: str = "",
                roles: list[str] | None = None, rounds: int = BCRYPT_ROUNDS) -> dict[str, Any]:
    if not isinstance(login, str) or not LOGIN_RE.match(login):
        raise UserError(f"invalid login {login!r}: 1-64 of letters, digits, '_', '.', '@', '-'")
    user = {"_id": login, "name": name, "password_hash": hash_password(password, rounds),
            "roles": roles if roles is not None else ["admin"], "created": utcnow()}
    try:
        db.users.insert_one(user)
    except DuplicateKeyError:
        raise UserExists(f"user {login!r} already exists") from None
    return user


def set_password(db: Collections, login: str, password: str) -> bool:
    return db.users.update_one({"_id": login}, {"$set": {"password_hash": hash_password(password)}}).matched_count == 1


def generate_password() -> str:
    return secrets.token_urlsafe(18)


class _VerifiedCredentials:
    """Credentials bcrypt accepted recently, tied to the password hash they matched.

    bcrypt costs about a quarter of a second by design, and a push or a CLI
    session makes dozens of calls; a changed password or removed user takes
    effect at once because the stored hash must still be the one that matched.
    """

    SECONDS = 300.0
    ENTRIES = 1024

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(login: str, password: str) -> str:
        return hashlib.sha256(f"{login}\0{password}".encode()).hexdigest()

    def matches(self, login: str, password: str, password_hash: str) -> bool:
        with self._lock:
            entry = self._entries.get(self._key(login, password))
        return entry is not None and entry[0] == password_hash and entry[1] > time.monotonic()

    def remember(self, login: str, password: str, password_hash: str) -> None:
        with self._lock:
            if len(self._entries) >= self.ENTRIES:
                self._entries.clear()
            self._entries[self._key(login, password)] = (password_hash, time.monotonic() + self.SECONDS)


_verified = _VerifiedCredentials()
_DUMMY_HASH = bcrypt.hashpw(b"x", bcrypt.gensalt(4))


def authenticate(db: Collections, login: str, password: str) -> dict[str, Any] | None:
    """The user if ``password`` is theirs, else None (an unknown login costs a bcrypt check too)."""
    user = db.users.find_one({"_id": login}) if isinstance(login, str) else None
    if user is not None and _verified.matches(login, password, user["password_hash"]):
        return user
    stored = user["password_hash"].encode() if user else _DUMMY_HASH
    try:
        ok = bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], stored)
    except ValueError:
        ok = False
    if not (ok and user):
        return None
    _verified.remember(login, password, user["password_hash"])
    return user


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
