"""API tokens of ``registry-admin login``: random, stored only as their SHA-256, expiring.

A token stands for its user's password on the admin API until it expires
(``api_token_lifetime``) or ``registry-admin logout`` revokes it. The database
never holds the token itself, so a database dump gives no usable tokens.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pulp_registry.db import Collections, as_utc, utcnow

PREFIX = "prt_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(PREFIX)


def issue(db: Collections, login: str, lifetime_seconds: int) -> tuple[str, datetime]:
    token = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(seconds=lifetime_seconds)
    db.api_tokens.insert_one({"_id": _digest(token), "login": login, "created": now, "expires": expires})
    return token, expires


def resolve(db: Collections, token: str) -> str | None:
    """The login a live token stands for, or None (unknown, revoked or expired)."""
    found: dict[str, Any] | None = db.api_tokens.find_one({"_id": _digest(token)})
    if found is None or as_utc(found["expires"]) <= utcnow():
        return None
    return found["login"]


def revoke(db: Collections, token: str) -> bool:
    return db.api_tokens.delete_one({"_id": _digest(token)}).deleted_count == 1


def revoke_all(db: Collections, login: str) -> None:
    """A deleted user or a changed password ends every session."""
    db.api_tokens.delete_many({"login": login})
