"""Failed logins, counted per login name and per client address, shared by every API process.

Each counter is one document (``login:<name>``, ``address:<ip>``) changed with
single-document atomic writes, so several gunicorn workers and hosts see the
same counts. Past ``login_failure_limit`` failures within ``login_failure_window``
seconds, further attempts are refused (429 with ``Retry-After``) before any
password is checked, until the window ends.
"""
from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from typing import Any

from pulp_registry.config import Settings
from pulp_registry.db import Collections, DuplicateKeyError, as_utc, utcnow

#: Longer login names are counted by their hash, so the key stays small.
MAX_KEY_NAME = 128


class TooManyFailures(Exception):
    """Too many failed logins for this login or address; ``retry_after`` says when to try again."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(f"too many failed logins for {what}; try again in {retry_after} seconds")
        self.message = str(self)
        self.retry_after = retry_after


def _keys(login: str, address: str) -> list[tuple[str, str]]:
    name = login if len(login) <= MAX_KEY_NAME else hashlib.sha256(login.encode()).hexdigest()
    keys = [(f"login:{name}", f"login {login[:MAX_KEY_NAME]!r}")]
    if address:
        keys.append((f"address:{address}", f"address {address}"))
    return keys


def check(db: Collections, settings: Settings, login: str, address: str) -> None:
    """Raise ``TooManyFailures`` while the login or the address is over the limit."""
    now = utcnow()
    for key, what in _keys(login, address):
        counter = db.login_failures.find_one({"_id": key})
        if counter is None or counter.get("count", 0) < settings.login_failure_limit:
            continue
        ends = as_utc(counter["window_start"]) + timedelta(seconds=settings.login_failure_window)
        if ends > now:
            raise TooManyFailures(what, max(1, math.ceil((ends - now).total_seconds())))


def record_failure(db: Collections, settings: Settings, login: str, address: str) -> None:
    now = utcnow()
    window = timedelta(seconds=settings.login_failure_window)
    for key, _ in _keys(login, address):
        for _attempt in range(3):
            counted = db.login_failures.find_one_and_update(
                {"_id": key, "window_start": {"$gt": now - window}}, {"$inc": {"count": 1}})
            if counted is not None:
                break
            try:  # no counter, or its window is over: start a new window
                db.login_failures.update_one(
                    {"_id": key, "window_start": {"$lte": now - window}},
                    {"$set": {"count": 1, "window_start": now, "expires": now + window}}, upsert=True)
                break
            except DuplicateKeyError:  # another process started the window a moment ago: count in it
                continue


def clear_login(db: Collections, login: str) -> None:
    """A successful login ends the count for that login (not for the address)."""
    for key, _ in _keys(login, "")[:1]:
        db.login_failures.delete_one({"_id": key})


def counters(db: Collections) -> list[dict[str, Any]]:
    return list(db.login_failures.find())
