"""Local users: bcrypt password hashes in the ``users`` collection.

LDAP and roles come later; ``authenticate`` is the one place that decides who a
caller is, for the REST API and the push endpoints alike.
"""
from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any

import bcrypt

from pulp_registry.db import Collections, DuplicateKeyError, utcnow

LOGIN_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: bcrypt hashes only the first 72 bytes; longer passwords would silently collide.
MAX_PASSWORD_BYTES = 72


class UserError(ValueError):
    """A login or password that cannot be used; the message says why."""


class UserExists(UserError):
    pass


def hash_password(password: str) -> str:
    encoded = password.encode()
    if not encoded:
        raise UserError("password must not be empty")
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise UserError(f"password is longer than {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(encoded, bcrypt.gensalt()).decode()


def create_user(db: Collections, login: str, password: str, name: str = "",
                roles: list[str] | None = None) -> dict[str, Any]:
    if not isinstance(login, str) or not LOGIN_RE.match(login):
        raise UserError(f"invalid login {login!r}: 1-64 of letters, digits, '_', '.', '@', '-'")
    user = {"_id": login, "name": name, "password_hash": hash_password(password),
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


def authenticate(db: Collections, login: str, password: str) -> dict[str, Any] | None:
    """The user if ``password`` is theirs, else None (same cost either way)."""
    user = db.users.find_one({"_id": login}) if isinstance(login, str) else None
    stored = user["password_hash"].encode() if user else bcrypt.hashpw(b"x", bcrypt.gensalt(4))
    try:
        ok = bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], stored)
    except ValueError:
        ok = False
    return user if ok and user else None


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
