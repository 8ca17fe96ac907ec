"""What happened to each repository: one ``repo_history`` document per event, newest first on reading.

Events are documents of their own (never an array inside the repository
document, which would grow without bound). Who and which task default to the
task being run (``tasks.CURRENT_TASK``), else to the API caller, so work functions need not pass them.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Mapping

from bson import ObjectId

from pulp_registry.db import Collections, isoformat, utcnow
from pulp_registry.tasks import CURRENT_TASK, requesting_user

log = logging.getLogger(__name__)

#: Actions recorded (``details`` says more; its keys are ours, never user data).
ACTIONS = ("create", "push", "sync", "copy", "remove", "delete", "publish", "update")
#: Largest page of ``list_history``.
MAX_PAGE = 1000


def record(db: Collections, repo_id: str, action: str, details: Mapping[str, Any] | None = None, *,
           user: str | None = None, task_id: str | None = None) -> None:
    """Record an event; a failure to record is logged, never raised (the work itself succeeded)."""
    task = CURRENT_TASK.get()
    if task is not None:
        task_id = task_id or task.get("_id")
        user = user or task.get("user")
    if user is None:
        user = requesting_user()  # a push or a removal made in the request itself
    try:
        db.repo_history.insert_one({"repo_id": repo_id, "time": utcnow(), "action": action, "user": user,
                                    "task_id": task_id, "details": dict(details or {})})
    except Exception:  # noqa: BLE001 - history is a record, not part of the work
        log.warning("could not record %s of repository %s in its history", action, repo_id, exc_info=True)


def list_history(db: Collections, repo_id: str, limit: int = 100, before: str | None = None,
                 action: str | None = None) -> list[dict[str, Any]]:
    """Events of ``repo_id``, newest first; ``before`` is the ``id`` of the last event of the previous page."""
    query: dict[str, Any] = {"repo_id": repo_id}
    if action:
        query["action"] = action
    if before:
        last = db.repo_history.find_one({"_id": ObjectId(before)}) if ObjectId.is_valid(before) else None
        if last is not None:
            query["$or"] = [{"time": {"$lt": last["time"]}},
                            {"time": last["time"], "_id": {"$lt": last["_id"]}}]
    cursor = db.repo_history.find(query).sort([("time", -1), ("_id", -1)]).limit(max(1, min(limit, MAX_PAGE)))
    return [event_json(event) for event in cursor]


def event_json(event: Mapping[str, Any]) -> dict[str, Any]:
    time: datetime | None = event.get("time")
    return {"id": str(event["_id"]), "time": isoformat(time), "action": event["action"],
            "user": event.get("user"), "task_id": event.get("task_id"), "details": event.get("details") or {}}


def forget_repository(db: Collections, repo_id: str) -> None:
    """Drop a deleted repository's history (a new repository of the same id starts afresh)."""
    db.repo_history.delete_many({"repo_id": repo_id})
