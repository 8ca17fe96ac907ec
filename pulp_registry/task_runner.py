"""The life of a task in a worker: claim, lock, heartbeat, run, record the outcome.

Celery only carries the message; the task's state lives in its MongoDB
document (``pulp_registry.tasks``). ``run_task`` is a plain function so tests
can drive it without a broker. A worker that dies leaves its locks to expire
and its task is ended as error by whoever finds the expired lease.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from pulp_registry import locks
from pulp_registry.db import Collections, utcnow
from pulp_registry.locks import LockBusy
from pulp_registry.tasks import TaskState

__all__ = ["LockBusy", "run_task", "reap_dead_worker_tasks", "reap_expired_tasks", "ProgressRecorder"]

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
Work = Callable[[Progress], Any]

#: Progress is written to the task document at most this often.
PROGRESS_INTERVAL = 0.5

WORKER_RESTARTED = "worker restarted while the task was running"
LEASE_EXPIRED = "the worker running the task stopped renewing its lock (worker died?)"


class ProgressRecorder:
    """A progress callback that writes ``progress.<step>`` of the task document, throttled."""

    def __init__(self, db: Collections, task_id: str, interval: float = PROGRESS_INTERVAL) -> None:
        self.db = db
        self.task_id = task_id
        self.interval = interval
        self._pending: dict[str, Any] = {}
        self._last_write = 0.0
        self._lock = threading.Lock()

    def __call__(self, report: dict[str, Any]) -> None:
        report = dict(report)
        step = report.pop("step", None)
        with self._lock:
            if isinstance(step, str) and step and "." not in step and not step.startswith("$"):
                self._pending[f"progress.{step}"] = report
            else:
                self._pending["progress"] = report
            finished_step = report.get("total") is not None and report.get("done") == report.get("total")
            if finished_step or time.monotonic() - self._last_write >= self.interval:
                self._write()

    def flush(self) -> None:
        with self._lock:
            self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        update, self._pending = self._pending, {}
        self._last_write = time.monotonic()
        try:
            self.db.tasks.update_one({"_id": self.task_id}, {"$set": update})
        except Exception:  # noqa: BLE001 - progress is informative; never fail the work for it
            log.warning("could not record progress of task %s", self.task_id, exc_info=True)


class _Heartbeat:
    """Renews the task's lock lease every lease/3 seconds while the work runs."""

    def __init__(self, db: Collections, task_id: str, lease_seconds: float) -> None:
        self.db = db
        self.task_id = task_id
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{task_id}", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                if locks.renew(self.db, self.task_id, self.lease_seconds) == 0:
                    log.warning("task %s holds no lock any more (lease taken over)", self.task_id)
            except Exception:  # noqa: BLE001 - keep beating; the next renewal may succeed
                log.warning("could not renew the locks of task %s", self.task_id, exc_info=True)


def _claim(db: Collections, task_id: str, worker_name: str) -> dict[str, Any] | None:
    """Move the task from waiting to running for this worker; None if it is not waiting."""
    with locks.PROCESS_GUARD:
        return db.tasks.find_one_and_update(
            {"_id": task_id, "state": TaskState.WAITING.value},
            {"$set": {"state": TaskState.RUNNING.value, "started": utcnow(), "worker": worker_name}},
            return_document=True)


def _put_back(db: Collections, task_id: str, worker_name: str) -> None:
    with locks.PROCESS_GUARD:
        db.tasks.update_one(
            {"_id": task_id, "state": TaskState.RUNNING.value, "worker": worker_name},
            {"$set": {"state": TaskState.WAITING.value, "started": None, "worker": None}})


def _end(db: Collections, task_id: str, worker_name: str, fields: dict[str, Any]) -> None:
    """Record the outcome unless the task was reaped meanwhile (its lease expired)."""
    with locks.PROCESS_GUARD:
        result = db.tasks.update_one(
            {"_id": task_id, "state": TaskState.RUNNING.value, "worker": worker_name},
            {"$set": {**fields, "finished": utcnow()}})
    if result.matched_count == 0:
        log.warning("task %s was no longer running on %s; outcome %s not recorded",
                    task_id, worker_name, fields.get("state"))


def _fail_task(db: Collections, task_id: str, message: str, worker: str | None = None) -> bool:
    """End a task left running as error; true if it was still running."""
    query: dict[str, Any] = {"_id": task_id, "state": TaskState.RUNNING.value}
    if worker is not None:
        query["worker"] = worker
    with locks.PROCESS_GUARD:
        result = db.tasks.update_one(query, {"$set": {
            "state": TaskState.ERROR.value, "finished": utcnow(),
            "error": {"code": "WorkerLost", "description": message}}})
    return result.modified_count == 1


def run_task(services: Any, task_id: str, work: Work, worker_name: str) -> Any:
    """Run ``work(progress)`` as task ``task_id`` on ``worker_name``; return its result.

    Returns None without running when the task is not waiting (canceled,
    already ended, or taken by another worker). Raises ``LockBusy`` when a
    live task holds one of its resources: the task is back to ``waiting`` and
    the caller retries it later. Errors of ``work`` end the task as ``error``
    and are not raised.
    """
    db = services.db
    try:
        reap_expired_tasks(db)  # cheap (few locks): tasks of dead workers end as error soon
    except Exception:  # noqa: BLE001 - clean-up of others must not stop this task
        log.warning("could not reap tasks with expired locks", exc_info=True)
    task = _claim(db, task_id, worker_name)
    if task is None:
        current = db.tasks.find_one({"_id": task_id}, {"state": 1})
        state = current.get("state") if current else "missing"
        log.info("task %s skipped: it is %s, not waiting", task_id, state)
        return None

    lease = float(services.settings.task_lock_timeout)
    try:
        expired_holders = locks.acquire(db, task.get("resources") or [], task_id, worker_name, lease)
    except BaseException:  # LockBusy included: the task waits for its retry
        _put_back(db, task_id, worker_name)
        raise
    for holder in expired_holders:
        if holder.get("task_id") and _fail_task(db, holder["task_id"], LEASE_EXPIRED):
            locks.release(db, holder["task_id"])
            log.warning("task %s of worker %s ended as error: its lock lease expired",
                        holder["task_id"], holder.get("worker"))

    progress = ProgressRecorder(db, task_id)
    try:
        with _Heartbeat(db, task_id, lease):
            try:
                result = work(progress)
            except Exception as exc:  # noqa: BLE001 - every failure becomes the task's error
                log.exception("task %s (%s) failed", task_id, task.get("task_type"))
                progress.flush()
                _end(db, task_id, worker_name, {
                    "state": TaskState.ERROR.value,
                    "error": {"code": type(exc).__name__, "description": str(exc) or type(exc).__name__}})
                return None
        progress.flush()
        _end(db, task_id, worker_name, {"state": TaskState.FINISHED.value, "result": result})
        return result
    finally:
        locks.release(db, task_id)


def reap_dead_worker_tasks(db: Collections, worker_name: str) -> list[str]:
    """End as error the tasks a previous run of ``worker_name`` left running; free their locks."""
    reaped = []
    for task in db.tasks.find({"state": TaskState.RUNNING.value, "worker": worker_name}, {"_id": 1}):
        if _fail_task(db, task["_id"], WORKER_RESTARTED, worker_name):
            reaped.append(task["_id"])
        locks.release(db, task["_id"])
    if reaped:
        log.warning("worker %s restarted: %d task(s) it was running ended as error: %s",
                    worker_name, len(reaped), ", ".join(reaped))
    return reaped


def reap_expired_tasks(db: Collections) -> list[str]:
    """End as error the running tasks whose lock lease expired (their worker died); free the locks."""
    reaped = []
    for lock in locks.expired_locks(db):
        task_id = lock.get("task_id")
        if not locks.remove_expired(db, lock):
            continue  # renewed or taken over meanwhile
        if task_id and _fail_task(db, task_id, LEASE_EXPIRED):
            locks.release(db, task_id)
            reaped.append(task_id)
    if reaped:
        log.warning("%d task(s) whose worker stopped renewing its lock ended as error: %s",
                    len(reaped), ", ".join(reaped))
    return reaped
