"""Read-only maintenance mode: one registry-wide switch that refuses every change of content.

The switch is the document ``_id: "read_only"`` in ``db.system`` (``reason``,
``since``, ``user``); it exists exactly while the mode is on, so switching is
one conditional single-document write each way (an insert that only an absent
document lets through, a delete). This module is its only writer.

While it is on, ``refuse_when_read_only`` raises ``ReadOnlyMode``, which the
admin app answers with ``503`` and ``Retry-After`` (``UNAVAILABLE`` on
``/v2/``, a JSON error on the REST API). It is called by:

- the ``/v2/`` views declared ``PUSH`` or ``DELETE`` (``access.auth_required``):
  blob uploads, mounts, manifest PUTs, manifest/tag/blob deletes;
- the REST views that change content (``refused_while_read_only``);
- ``tasks.submit`` for any task asked from outside a running task, and the
  sync scheduler, which skips its pass. Tasks already running finish, and the
  tasks they spawn (a copy's publish) still run: what was accepted completes.

Reads, logins, tokens, task listing and cancel, user/role/permission admin
(metadata, not content) and the switch itself keep working; Crane never reads
the database and keeps serving the published tree.

Each process keeps what it read for ``CACHE_SECONDS``, so a request costs no
database round trip; a switch made in another process is seen within that
time (a backup waits that long after switching on before it relies on it).
"""
from __future__ import annotations

import functools
import threading
import time
import weakref
from typing import Any, Callable, TypeVar

from pulp_registry.db import PROCESS_GUARD, DuplicateKeyError, as_utc, isoformat, utcnow

DOCUMENT_ID = "read_only"
#: How long a process trusts what it last read of the switch.
CACHE_SECONDS = 1.0
#: ``Retry-After`` of a refusal: maintenance usually takes minutes.
RETRY_AFTER_SECONDS = 60
MAX_REASON_LENGTH = 500

View = TypeVar("View", bound=Callable[..., Any])


class ReadOnlyMode(Exception):
    """A change asked for while the registry is in read-only maintenance mode."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.message = refusal_message(reason)
        self.retry_after = RETRY_AFTER_SECONDS
        super().__init__(self.message)


def refusal_message(reason: str) -> str:
    return f"the registry is in read-only maintenance mode: {reason or 'no reason given'}"


#: ``db`` -> (monotonic time read, state); each entry replaced whole, never changed in place.
#: Weak keys: a database object that is gone (a test's) takes its entry with it.
_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, Any] | None]] = weakref.WeakKeyDictionary()
_cache_guard = threading.Lock()


def _remember(db: Any, state: dict[str, Any] | None) -> None:
    with _cache_guard:
        try:
            _cache[db] = (time.monotonic(), state)
        except TypeError:  # not weakly referable: read every time
            pass


def _forget(db: Any) -> None:
    with _cache_guard:
        _cache.pop(db, None)


def read_only_state(db: Any) -> dict[str, Any] | None:
    """``{"reason", "since", "user"}`` while read-only mode is on, else None (read from the database)."""
    document = db.system.find_one({"_id": DOCUMENT_ID})
    if document is None:
        _remember(db, None)
        return None
    state = {"reason": document.get("reason") or "", "since": as_utc(document.get("since")),
             "user": document.get("user")}
    _remember(db, state)
    return state


def cached_state(db: Any) -> dict[str, Any] | None:
    """The state as read at most ``CACHE_SECONDS`` ago by this process: the cheap check of every write."""
    with _cache_guard:
        try:
            cached = _cache.get(db)
        except TypeError:
            cached = None
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    return read_only_state(db)


def validate_reason(reason: Any) -> str:
    """A reason is one line of text: it is shown to every client that is refused."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: a short text saying why the registry is read-only is required")
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH or any(ord(char) < 32 for char in reason):
        raise ValueError(f"reason: one line of at most {MAX_REASON_LENGTH} characters")
    return reason


def enter_read_only(db: Any, reason: str, user: str | None = None) -> bool:
    """Switch read-only mode on; True if this call switched it (False: it was on already, reason kept)."""
    reason = validate_reason(reason)
    try:
        with PROCESS_GUARD:
            result = db.system.update_one(
                {"_id": DOCUMENT_ID},
                {"$setOnInsert": {"reason": reason, "since": utcnow(), "user": user}}, upsert=True)
        switched = result.upserted_id is not None
    except DuplicateKeyError:  # another process inserted it at the same moment
        switched = False
    _forget(db)
    return switched


def leave_read_only(db: Any) -> bool:
    """Switch read-only mode off; True if this call switched it (False: it was off)."""
    with PROCESS_GUARD:
        deleted = db.system.delete_one({"_id": DOCUMENT_ID}).deleted_count
    _forget(db)
    return deleted == 1


def refuse_when_read_only(db: Any) -> None:
    """Raise ``ReadOnlyMode`` while the mode is on (as seen within ``CACHE_SECONDS``)."""
    state = cached_state(db)
    if state is not None:
        raise ReadOnlyMode(state["reason"])


def refused_while_read_only(view: View) -> View:
    """Declare a REST view that changes content: put it under ``@auth_required`` (the caller is checked first)."""
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pulp_registry.services import current_services

        refuse_when_read_only(current_services().db)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def state_json(state: dict[str, Any] | None) -> dict[str, Any]:
    """The state as the API and the CLI show it."""
    if state is None:
        return {"read_only": False, "reason": None, "since": None, "user": None}
    return {"read_only": True, "reason": state.get("reason"), "since": isoformat(state.get("since")),
            "user": state.get("user")}
