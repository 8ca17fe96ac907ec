"""The life of a task in a worker: claim, lock, heartbeat, run, record the outcome, hand over.

Celery only carries the message; the task's state lives in its MongoDB
document, written by ``pulp_registry.tasks``. ``run_task`` is a plain function
so tests can drive it without a broker.

While the work runs, a heartbeat thread renews the task's lease (and its
repository locks) and notices a cancel request. The work learns both at its
safe points: each call of its ``progress`` callback may raise
``TaskCanceled`` or ``TaskTimeLimitExceeded``. A worker that dies simply stops
renewing; the reaper (``task_reaper.py``) ends its task once the lease has
expired, which is the only proof of death it trusts.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

from pulp_registry import locks, task_metrics, task_reaper, tasks, webhooks
from pulp_registry.db import Collections
from pulp_registry.locks import LockBusy
from pulp_registry.tasks import Progress, TaskCanceled, TaskState, TaskStopped, TaskTimeLimitExceeded

__all__ = ["LockBusy", "run_task", "ProgressRecorder", "worker_identity"]

log = logging.getLogger(__name__)

Work = Callable[[Progress], Any]

#: Progress is written to the task document at most this often.
PROGRESS_INTERVAL = 0.5
#: Longest time between two lease renewals (a cancel request is seen within it).
MAX_RENEW_INTERVAL = 2.0

_process_token: tuple[int, str] | None = None


def worker_identity(node_name: str | None = None) -> str:
    """This process's worker id: the node name, the pid and a random part made once per process.

    Two workers started with the same ``--hostname``, or a restarted one, never share an id, so
    nothing one of them does can be mistaken for the other's.
    """
    global _process_token
    if _process_token is None or _process_token[0] != os.getpid():
        _process_token = (os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    return f"{node_name or 'worker@' + socket.gethostname()}/{_process_token[1]}"


class _Signals:
    """What the heartbeat learned, for the work's next safe point."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.cancel_requested = threading.Event()
        self.lost = threading.Event()

    def check(self) -> None:
        if self.lost.is_set():
            raise TaskStopped("the task was ended by the reaper (its lease expired)")
        if self.cancel_requested.is_set():
            raise TaskCanceled("canceled at a safe point")
        if time.monotonic() > self.deadline:
            raise TaskTimeLimitExceeded("the task ran past its time limit (setting task_time_limits)")


class ProgressRecorder:
    """A progress callback that writes ``progress.<step>`` of the task document, throttled.

    Each call is a safe point: it raises when the task must stop there.
    """

    def __init__(self, db: Collections, task_id: str, interval: float = PROGRESS_INTERVAL,
                 signals: _Signals | None = None) -> None:
        self.db = db
        self.task_id = task_id
        self.interval = interval
        self.signals = signals
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
        if self.signals is not None:
            self.signals.check()

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
    """Renews the task's lease and locks while the work runs, and passes on what it learns."""

    def __init__(self, db: Collections, task_id: str, worker: str, lease_seconds: float,
                 signals: _Signals) -> None:
        self.db = db
        self.task_id = task_id
        self.worker = worker
        self.lease_seconds = lease_seconds
        self.signals = signals
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{task_id}", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(min(self.lease_seconds / 3, MAX_RENEW_INTERVAL)):
            try:
                task = tasks.renew_lease(self.db, self.task_id, self.worker, self.lease_seconds)
                if task is None:
                    log.warning("task %s is no longer running on %s (reaped); it stops at its next safe point",
                                self.task_id, self.worker)
                    self.signals.lost.set()
                    return
                if task.get("cancel_requested"):
                    self.signals.cancel_requested.set()
                locks.renew(self.db, self.task_id, self.lease_seconds)
            except Exception:  # noqa: BLE001 - keep beating; the next renewal may succeed
                log.warning("could not renew the lease of task %s", self.task_id, exc_info=True)


def run_task(services: Any, task_id: str, work: Work, worker_name: str | None = None) -> Any:
    """Run ``work(progress)`` as task ``task_id``; return its result.

    Returns None without running when the task is not waiting (canceled,
    ended, or taken by another worker), or when an earlier task on one of its
    resources is still pending: then it stays waiting, and is sent again when
    that one ends. Errors of ``work`` end the task as ``error`` and are not raised.
    """
    db = services.db
    worker = worker_name or worker_identity()
    task = db.tasks.find_one({"_id": task_id})
    if task is None or task["state"] != TaskState.WAITING.value:
        log.info("task %s skipped: it is %s, not waiting", task_id, task["state"] if task else "missing")
        return None
    blocker = tasks.blocking_task(db, task)
    if blocker is not None and blocker["state"] == TaskState.RUNNING.value:
        # Its worker may have died: then end it now rather than at the reaper's next pass.
        holder = db.tasks.find_one({"_id": blocker["_id"]}, task_reaper.RUNNING_FIELDS)
        if holder is not None and task_reaper.end_if_dead(services, holder, dispatch=False):
            blocker = tasks.blocking_task(db, task)
    if blocker is not None:
        log.info("task %s waits for task %s (%s) on the same resource", task_id, blocker["_id"], blocker["state"])
        return None
    lease = float(services.settings.task_lock_timeout)
    time_limit = float(services.settings.task_time_limit(task["task_type"]))
    task = tasks.claim(db, task_id, worker, lease, time_limit)
    if task is None:
        return None
    resources = task.get("resources") or []
    try:
        try:
            expired_holders = locks.acquire(db, resources, task_id, worker, lease)
        except LockBusy as busy:
            # A task that ended but has not released its lock yet: it sends this one when it does.
            tasks.put_back(db, task_id, worker)
            log.info("task %s waits: %s", task_id, busy)
            return None
        for holder in expired_holders:
            if holder.get("task_id") and tasks.end_running(db, holder["task_id"], "WorkerLost",
                                                                task_reaper.LEASE_EXPIRED):
                log.warning("task %s of worker %s ended as error: its lease expired",
                            holder["task_id"], holder.get("worker"))
        return _run_claimed(services, task, work, worker, lease, time_limit)
    finally:
        locks.release(db, task_id)
        tasks.dispatch_next(services, resources)


def _record(services: Any, task_id: str, worker: str, state: TaskState, **outcome: Any) -> None:
    """Record the outcome (``tasks.finish``) and, once recorded, notify the webhooks of it."""
    if tasks.finish(services.db, task_id, worker, state, **outcome):
        webhooks.task_ended(services, task_id)
    task_metrics.observe_ended(tasks.CURRENT_TASK.get(), state.value)


def _run_claimed(services: Any, task: dict[str, Any], work: Work, worker: str, lease: float,
                 time_limit: float) -> Any:
    db, task_id = services.db, task["_id"]
    signals = _Signals(time.monotonic() + time_limit)
    progress = ProgressRecorder(db, task_id, signals=signals)
    token = tasks.CURRENT_TASK.set(task)
    try:
        with _Heartbeat(db, task_id, worker, lease, signals):
            try:
                result = work(progress)
            except TaskCanceled:
                progress.flush()
                log.info("task %s (%s) canceled", task_id, task.get("task_type"))
                _record(services, task_id, worker, TaskState.CANCELED)
                return None
            except Exception as exc:  # noqa: BLE001 - every failure becomes the task's error
                if not isinstance(exc, TaskStopped):
                    log.exception("task %s (%s) failed", task_id, task.get("task_type"))
                progress.flush()
                _record(services, task_id, worker, TaskState.ERROR,
                        error={"code": type(exc).__name__, "description": str(exc) or type(exc).__name__})
                return None
        progress.flush()
        _record(services, task_id, worker, TaskState.FINISHED, result=result)
        return result
    finally:
        tasks.CURRENT_TASK.reset(token)

