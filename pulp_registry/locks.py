"""Lease-based resource locks: two tasks never change the same repository at once.

A lock is one document in ``db.locks`` (``_id`` the resource, ``task_id``,
``worker``, ``expires``). It is taken with ``insert_one`` on the unique
``_id``, renewed by the holder's heartbeat, and released when the task ends.
A lock whose lease passed (its worker died) or whose task already ended may be
taken over with one ``find_one_and_update`` conditioned on the old holder, so
a dead worker never leaves a repository locked forever. Only single-document
atomic operations are used: no transactions, so it runs on MongoDB and mongomock.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable

from pulp_registry.db import PROCESS_GUARD, Collections, DuplicateKeyError, as_utc, utcnow
from pulp_registry.tasks import FINAL_STATES



class LockBusy(Exception):
    """A live task holds one of the resources; try again later."""

    def __init__(self, resource: str, holder_task_id: str | None) -> None:
        super().__init__(f"{resource} is locked by task {holder_task_id}")
        self.resource = resource
        self.holder_task_id = holder_task_id


def _expired(lock: dict[str, Any], now: datetime) -> bool:
    expires = as_utc(lock.get("expires"))
    return expires is None or expires <= now


def _holder_is_done(db: Collections, lock: dict[str, Any], task_id: str) -> bool:
    """The holder is this task (a retry after a crash), has ended, or no longer exists."""
    if lock.get("task_id") == task_id:
        return True
    holder = db.tasks.find_one({"_id": lock.get("task_id")}, {"state": 1})
    return holder is None or holder.get("state") in FINAL_STATES


def acquire(db: Collections, resources: Iterable[str], task_id: str, worker: str,
            lease_seconds: float) -> list[dict[str, Any]]:
    """Lock every resource for ``task_id`` or none of them.

    Returns the locks taken over because their lease had expired (their
    worker died), so the caller can end those tasks as error. Raises
    ``LockBusy`` when a live task holds one of the resources.
    """
    taken: list[str] = []
    expired_holders: list[dict[str, Any]] = []
    try:
        for resource in sorted(set(resources)):
            previous = _take(db, resource, task_id, worker, lease_seconds)
            taken.append(resource)
            if previous is not None and previous.get("task_id") != task_id:
                expired_holders.append(previous)
    except BaseException:
        _release_resources(db, taken, task_id)
        raise
    return expired_holders


def _take(db: Collections, resource: str, task_id: str, worker: str,
          lease_seconds: float) -> dict[str, Any] | None:
    """Take one lock; return the previous holder's lock document when it was taken over."""
    with PROCESS_GUARD:
        for _attempt in range(3):
            now = utcnow()
            expires = now + timedelta(seconds=lease_seconds)
            try:
                db.locks.insert_one({"_id": resource, "task_id": task_id, "worker": worker, "expires": expires})
                return None
            except DuplicateKeyError:
                pass
            current = db.locks.find_one({"_id": resource})
            if current is None:
                continue  # released in between: try to insert again
            expired = _expired(current, now)
            if not expired and not _holder_is_done(db, current, task_id):
                raise LockBusy(resource, current.get("task_id"))
            previous = db.locks.find_one_and_update(
                {"_id": resource, "task_id": current.get("task_id"), "expires": current.get("expires")},
                {"$set": {"task_id": task_id, "worker": worker, "expires": expires}})
            if previous is not None:
                return previous if expired else None
            # Someone else changed the lock between our read and our update: look again.
        current = db.locks.find_one({"_id": resource}) or {}
        raise LockBusy(resource, current.get("task_id"))


def renew(db: Collections, task_id: str, lease_seconds: float) -> int:
    """Extend the lease of every lock ``task_id`` holds; return how many it still holds."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    with PROCESS_GUARD:
        return db.locks.update_many({"task_id": task_id}, {"$set": {"expires": expires}}).matched_count


def release(db: Collections, task_id: str) -> None:
    """Release every lock ``task_id`` holds (only its own: a taken-over lock is not touched)."""
    with PROCESS_GUARD:
        db.locks.delete_many({"task_id": task_id})


def _release_resources(db: Collections, resources: Iterable[str], task_id: str) -> None:
    with PROCESS_GUARD:
        for resource in resources:
            db.locks.delete_one({"_id": resource, "task_id": task_id})


def expired_locks(db: Collections) -> list[dict[str, Any]]:
    """Locks whose holder stopped renewing its lease."""
    return list(db.locks.find({"expires": {"$lte": utcnow()}}))


def remove_expired(db: Collections, lock: dict[str, Any]) -> bool:
    """Delete ``lock`` if it is still the same expired lease (nobody renewed or took it)."""
    with PROCESS_GUARD:
        result = db.locks.delete_one({"_id": lock["_id"], "task_id": lock.get("task_id"),
                                      "expires": lock.get("expires")})
        return result.deleted_count == 1
