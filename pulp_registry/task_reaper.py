"""The periodic reaper: no task is lost, stuck or kept for ever, whatever died and wherever.

Every worker process runs one (``Reaper``); all of them may run at once, since
each change is one write conditioned on what was read. A pass:

- ends as error the running tasks whose lease expired (their worker process
  stopped renewing it: it died, or hangs without its heartbeat) and those that
  outlived their time limit by the lease (hung where no safe point comes), then
  frees their locks and sends the next task on their resources;
- sends again the waiting tasks that may start but that no worker claimed within
  ``task_dispatch_timeout`` (a lost message, or a worker that died after taking it);
- queues the syncs whose schedule has come (``sync_schedule``);
- purges tasks that ended more than ``task_retention_days`` ago.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pulp_registry import locks, sync_schedule, tasks, webhooks
from pulp_registry.db import as_utc, utcnow
from pulp_registry.periodic import Periodic
from pulp_registry.tasks import TaskState

log = logging.getLogger(__name__)

LEASE_EXPIRED = "the worker running the task stopped renewing its lease (worker died?)"
TIME_LIMIT = "the task ran past its time limit and never reached a safe point to stop (hung?)"


@dataclass
class ReapReport:
    lost: list[str] = field(default_factory=list)
    hung: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    scheduled: list[str] = field(default_factory=list)
    purged: int = 0


def _end(services: Any, task: dict[str, Any], code: str, description: str, dispatch: bool) -> bool:
    """End one running task as the reaper's verdict; free its locks and (``dispatch``) start what waited."""
    condition = {"worker": task.get("worker"), "lease_expires": task.get("lease_expires")}
    if not tasks.end_running(services.db, task["_id"], code, description, **condition):
        return False  # renewed, ended or reaped by someone else meanwhile
    locks.release(services.db, task["_id"])
    webhooks.task_ended(services, task["_id"])
    if dispatch:
        tasks.dispatch_next(services, task.get("resources") or [])
    return True


RUNNING_FIELDS = {"worker": 1, "lease_expires": 1, "deadline": 1, "resources": 1, "started": 1, "state": 1}


def end_if_dead(services: Any, task: dict[str, Any], now: datetime | None = None,
                dispatch: bool = True) -> str | None:
    """End a running task whose lease expired (``"lost"``) or that hung past its time limit (``"hung"``).

    ``dispatch=False`` when the caller is about to run the task that waited for it.
    """
    now = now or utcnow()
    if task.get("state") != TaskState.RUNNING.value:
        return None
    grace = timedelta(seconds=services.settings.task_lock_timeout)
    expires = as_utc(task.get("lease_expires"))
    if expires is None:  # written before leases were on tasks: its start is all we know
        started = as_utc(task.get("started"))
        expires = started + grace if started else now
    deadline = as_utc(task.get("deadline"))
    if expires <= now:
        return "lost" if _end(services, task, "WorkerLost", LEASE_EXPIRED, dispatch) else None
    if deadline is not None and deadline + grace <= now:
        return "hung" if _end(services, task, "TimeLimitExceeded", TIME_LIMIT, dispatch) else None
    return None


def reap(services: Any) -> ReapReport:
    """One pass of the reaper (see the module's docstring)."""
    db, settings = services.db, services.settings
    report = ReapReport()
    now = utcnow()
    running = db.tasks.find({"state": TaskState.RUNNING.value}, RUNNING_FIELDS)
    for task in running:
        verdict = end_if_dead(services, task, now)
        if verdict == "lost":
            report.lost.append(task["_id"])
        elif verdict == "hung":
            report.hung.append(task["_id"])
    if getattr(services, "celery", None) is not None:
        stale = now - timedelta(seconds=settings.task_dispatch_timeout)
        waiting = db.tasks.find({"state": TaskState.WAITING.value,
                                 "$or": [{"sent": {"$lte": stale}}, {"sent": None, "created": {"$lte": stale}}]})
        for task in waiting:
            if tasks.blocking_task(db, task) is None and tasks.resend(services, task):
                report.resent.append(task["_id"])
        report.scheduled = sync_schedule.queue_due_syncs(services)
    if settings.task_retention_days:
        report.purged = tasks.purge_finished(db, now - timedelta(days=settings.task_retention_days))
    for what, ids in (("whose worker died", report.lost), ("past their time limit", report.hung)):
        if ids:
            log.warning("%d running task(s) %s ended as error: %s", len(ids), what, ", ".join(ids))
    if report.resent:
        log.warning("%d waiting task(s) nobody claimed sent again: %s", len(report.resent), ", ".join(report.resent))
    return report


def interval(settings: Any) -> float:
    """Seconds between passes: often enough to notice a dead worker or a lost message promptly."""
    return max(0.5, min(30.0, settings.task_lock_timeout / 3, settings.task_dispatch_timeout / 3))


class Reaper(Periodic):
    """Runs ``reap`` at start (what dead workers left is ended before this worker takes a task),
    then every ``interval`` seconds, until stopped."""

    def __init__(self, services: Any, every: float | None = None) -> None:
        super().__init__("task-reaper", every if every is not None else interval(services.settings),
                         lambda: reap(services))
