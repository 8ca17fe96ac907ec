"""Task status documents (Pulp's model): the one module that writes task state.

A task document is written (``waiting``) before the message goes to the
broker, so every task is visible from the moment it is asked for; a message
that cannot be sent ends the task as error at once. Workers move it to
``running`` (``claim``) and then ``finished``, ``error`` or ``canceled``
(``finish``); the reaper (``task_reaper.py``) ends tasks whose lease expired
and sends again waiting tasks nobody claimed. Every change is one write
conditioned on the state it expects, so concurrent workers, reapers and API
processes never undo each other.

Order: tasks sharing a resource (a repository) run one after another in the
order they were created. A task whose message arrives while an earlier task
on one of its resources is pending stays waiting, without re-queuing; whoever
ends that earlier task sends the next one (``next_runnable``), and the reaper
covers a message lost on the way.

No twins: a task of a type in ``PENDING_STATES`` carries ``pending_key``
(``<type>:<resources>``), under a unique sparse index, from its creation. Asking
again for the same work while that task is still pending answers it; two API
processes asking at once insert one document and the other gets a duplicate
key, then answers the winner. The key outlives the pending states: the next
``submit`` of the same work drops it from the old task with one write
conditioned on that task no longer being pending, and tries again.
"""
from __future__ import annotations

import contextvars
import enum
import threading
import time
import uuid
import logging
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from pymongo import ReturnDocument

from pulp_registry import maintenance, webhooks
from pulp_registry.db import PROCESS_GUARD, Collections, DuplicateKeyError, isoformat, utcnow


class TaskState(str, enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELED = "canceled"


FINAL_STATES = frozenset({TaskState.FINISHED, TaskState.ERROR, TaskState.CANCELED})
FINAL = [state.value for state in FINAL_STATES]
NOT_FINAL = [TaskState.WAITING.value, TaskState.RUNNING.value]

log = logging.getLogger(__name__)

#: Task types and the Celery task that runs each (``workers/tasks.py``).
TASK_NAMES = {
    "publish": "workers.tasks.publish",
    "delete_repository": "workers.tasks.delete_repository",
    "copy": "workers.tasks.copy",
    "orphan_cleanup": "workers.tasks.orphan_cleanup",
    "sync": "workers.tasks.sync",
    "sync_preview": "workers.tasks.sync_preview",
    "republish": "workers.tasks.republish",
}

#: The task document being run in this thread (set by ``task_runner.run_task``): history records
#: and tasks spawned by the work name it as their task and parent.
CURRENT_TASK: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("current_task", default=None)


#: What a task's work reports progress through: ``progress({"step": ..., "done": n, "total": n})``.
#: Each call is a safe point, where it may raise ``TaskStopped`` (canceled, past the time limit).
Progress = Callable[[dict[str, Any]], None]


class TaskStopped(Exception):
    """Raised at a safe point of the work (a progress report) when the task must stop there."""


class TaskCanceled(TaskStopped):
    """Somebody canceled the running task."""


class TaskTimeLimitExceeded(TaskStopped):
    """The task ran longer than its type may (``task_time_limits``)."""


#: The states in which a task of a type counts as pending: asked again, the same task is answered.
#: A running publish may have read the repository already, so only a waiting one stands for a new request.
PENDING_STATES: dict[str, tuple[TaskState, ...]] = {
    "publish": (TaskState.WAITING,),
    "delete_repository": (TaskState.WAITING, TaskState.RUNNING),
    "orphan_cleanup": (TaskState.WAITING,),
    # A sync waiting or running will fetch what there is: a schedule or a second request joins it.
    "sync": (TaskState.WAITING, TaskState.RUNNING),
    "sync_preview": (TaskState.WAITING,),
}

#: Attempts of ``submit`` to insert a task or find its pending twin (each lost race is one).
_SUBMIT_ATTEMPTS = 20


class TaskSubmitConflict(RuntimeError):
    """Too many concurrent submissions of the same work changed the pending task under us."""


def repository_resource(repo_id: str) -> str:
    """The lock name of a repository: two tasks never change one at once."""
    return f"repository:{repo_id}"


def pending_key(task_type: str, resources: Iterable[str]) -> str | None:
    """The key two pending tasks of the same work share (None for types that may run twice)."""
    resources = sorted(set(resources))
    if task_type not in PENDING_STATES or not resources:
        return None
    return f"{task_type}:{','.join(resources)}"


_last_position = 0
_position_guard = threading.Lock()


def _queue_position() -> int:
    """Nanoseconds since the epoch, strictly increasing within the process: the order tasks were queued in.

    (``created`` keeps milliseconds only, and tasks queued together share it.)
    """
    global _last_position
    with _position_guard:
        _last_position = max(_last_position + 1, time.time_ns())
        return _last_position


def _new_task(task_type: str, resources: Iterable[str], kwargs: dict[str, Any],
              user: str | None = None) -> dict[str, Any]:
    parent = CURRENT_TASK.get()
    return {
        "_id": str(uuid.uuid4()),
        "task_type": task_type,
        "resources": list(resources),
        "kwargs": kwargs,
        "user": user or (parent or {}).get("user"),
        "parent": parent["_id"] if parent else None,
        "state": TaskState.WAITING.value,
        "progress": {},
        "result": None,
        "error": None,
        "created": utcnow(),
        "queued": _queue_position(),
        "started": None,
        "finished": None,
        "worker": None,
        "sent": None,
    }


def create_task(db: Collections, task_type: str, resources: Iterable[str],
                kwargs: dict[str, Any], user: str | None = None) -> dict[str, Any]:
    """Insert a waiting task document as given, without the twin check (``submit`` is how work is asked for)."""
    task = _new_task(task_type, resources, kwargs, user)
    db.tasks.insert_one(task)
    return task


def create_unless_pending(db: Collections, task_type: str, resources: Iterable[str],
                          kwargs: dict[str, Any], user: str | None = None) -> tuple[dict[str, Any], bool]:
    """A new waiting task, or the pending task of the same work; and whether it is new.

    Safe when several processes ask at once: the unique ``pending_key`` lets one insert win.
    """
    resources = list(resources)
    key = pending_key(task_type, resources)
    if key is None:
        return create_task(db, task_type, resources, kwargs, user), True
    pending_states = [state.value for state in PENDING_STATES[task_type]]
    for _attempt in range(_SUBMIT_ATTEMPTS):
        # mongomock runs a write as several Python steps (a refused insert is visible until rolled
        # back): serialize ours within the process. Across processes, the unique index decides.
        with PROCESS_GUARD:
            # A pending task written without the key (by ``create_task``) counts as well.
            pending = find_pending(db, task_type, resources[0], PENDING_STATES[task_type]) \
                if len(set(resources)) == 1 else None
            if pending is not None:
                return pending, False
            task = {**_new_task(task_type, resources, kwargs, user), "pending_key": key}
            try:
                db.tasks.insert_one(task)
                return task, True
            except DuplicateKeyError:
                holder = db.tasks.find_one({"pending_key": key})
            if holder is None:
                continue  # released in between: insert again
            if holder.get("state") in pending_states:
                return holder, False
            # The holder is no longer pending (it started, ended or was canceled): free the key for this work.
            db.tasks.update_one({"_id": holder["_id"], "pending_key": key, "state": {"$nin": pending_states}},
                                {"$unset": {"pending_key": ""}})
    raise TaskSubmitConflict(f"could not submit {task_type} on {', '.join(resources)}: "
                             "too many concurrent submissions")


def requesting_user() -> str | None:
    """The login of the API caller asking for the work, when there is one."""
    from flask import has_request_context

    if not has_request_context():
        return None
    from pulp_registry.access import current_caller

    try:
        return current_caller().login
    except Exception:  # noqa: BLE001 - a request without an identified caller
        return None


def submit(services: Any, task_type: str, resources: Iterable[str], *, user: str | None = None,
           **kwargs: Any) -> dict[str, Any]:
    """Record a waiting task and send it to the workers; return its document.

    For work with a pending twin (``PENDING_STATES``), the pending task is returned and nothing is sent.
    ``user`` defaults to the API caller, else to the user of the task that spawns this one.
    Refused (``maintenance.ReadOnlyMode``) in read-only mode, unless a running task asks (it finishes its work).
    """
    if CURRENT_TASK.get() is None:
        maintenance.refuse_when_read_only(services.db)
    task, created = create_unless_pending(services.db, task_type, resources, kwargs, user or requesting_user())
    if not created:
        return task
    try:
        send(services, task)
    except Exception as exc:
        # Never sent, it would never run: end it, so that it answers no later request for the same work.
        with PROCESS_GUARD:
            services.db.tasks.update_one(
                {"_id": task["_id"], "state": TaskState.WAITING.value},
                {"$set": {"state": TaskState.ERROR.value, "finished": utcnow(),
                          "error": {"code": type(exc).__name__, "description": f"could not send the task: {exc}"}},
                 "$unset": {"pending_key": ""}})
        raise
    return services.db.tasks.find_one({"_id": task["_id"]}) or task


def send(services: Any, task: dict[str, Any]) -> None:
    """Send the task's message (again); claiming is conditional, so a duplicate message is harmless."""
    with PROCESS_GUARD:
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"sent": utcnow()}, "$inc": {"sends": 1}})
    _message(services, task)


def _message(services: Any, task: dict[str, Any]) -> None:
    """The broker message that makes a worker run ``task`` (its Celery task, with its kwargs)."""
    services.celery.signature(TASK_NAMES[task["task_type"]],
                              kwargs={"task_id": task["_id"], **(task.get("kwargs") or {})}).apply_async(
        task_id=task["_id"])


def resend(services: Any, task: dict[str, Any]) -> bool:
    """Send a waiting task again unless another process just did (one conditional write decides)."""
    with PROCESS_GUARD:
        claimed = services.db.tasks.update_one(
            {"_id": task["_id"], "state": TaskState.WAITING.value, "sent": task.get("sent")},
            {"$set": {"sent": utcnow()}, "$inc": {"sends": 1}})
    if claimed.modified_count != 1:
        return False
    try:
        _message(services, task)
    except Exception:  # noqa: BLE001 - the broker is down: the reaper tries again later
        log.warning("could not send task %s again", task["_id"], exc_info=True)
        return False
    return True


# --- order on shared resources ------------------------------------------------------


QUEUE_ORDER = [("queued", 1), ("_id", 1)]


def _earlier(task: dict[str, Any]) -> dict[str, Any]:
    """The query of tasks queued before ``task`` (ties broken by id, so the order is total)."""
    return {"$or": [{"queued": {"$lt": task.get("queued")}},
                    {"queued": task.get("queued"), "_id": {"$lt": task["_id"]}}]}


def blocking_task(db: Collections, task: dict[str, Any]) -> dict[str, Any] | None:
    """The oldest task, created before ``task``, still pending on one of its resources (None: it may run)."""
    resources = task.get("resources") or []
    if not resources:
        return None
    return db.tasks.find_one({"resources": {"$in": resources}, "state": {"$in": NOT_FINAL}, **_earlier(task)},
                             {"_id": 1, "state": 1, "task_type": 1}, sort=QUEUE_ORDER)


def next_runnable(db: Collections, resources: Iterable[str]) -> list[dict[str, Any]]:
    """For each resource, its oldest pending task if that one is waiting and nothing earlier blocks it."""
    found: dict[str, dict[str, Any]] = {}
    for resource in sorted(set(resources)):
        head = db.tasks.find_one({"resources": resource, "state": {"$in": NOT_FINAL}}, sort=QUEUE_ORDER)
        if head is not None and head["state"] == TaskState.WAITING.value and head["_id"] not in found \
                and blocking_task(db, head) is None:
            found[head["_id"]] = head
    return list(found.values())


def dispatch_next(services: Any, resources: Iterable[str]) -> None:
    """Send the tasks that may start now that a task on ``resources`` ended (the queue's hand-off)."""
    if getattr(services, "celery", None) is None:
        return
    for task in next_runnable(services.db, resources):
        try:
            send(services, task)
        except Exception:  # noqa: BLE001 - the reaper sends it once the broker is back
            log.warning("could not send the next task %s", task["_id"], exc_info=True)


# --- state changes of a running task ------------------------------------------------


def claim(db: Collections, task_id: str, worker: str, lease_seconds: float,
          time_limit: float) -> dict[str, Any] | None:
    """Move a waiting task to running on ``worker``; None if it is not waiting any more."""
    now = utcnow()
    with PROCESS_GUARD:
        return db.tasks.find_one_and_update(
            {"_id": task_id, "state": TaskState.WAITING.value},
            {"$set": {"state": TaskState.RUNNING.value, "started": now, "worker": worker,
                      "lease_expires": now + timedelta(seconds=lease_seconds),
                      "deadline": now + timedelta(seconds=time_limit)}},
            return_document=ReturnDocument.AFTER)


def put_back(db: Collections, task_id: str, worker: str) -> None:
    """A claimed task that could not start (its lock is busy) waits again."""
    with PROCESS_GUARD:
        db.tasks.update_one({"_id": task_id, "state": TaskState.RUNNING.value, "worker": worker},
                            {"$set": {"state": TaskState.WAITING.value, "started": None, "worker": None},
                             "$unset": {"lease_expires": "", "deadline": ""}})


def renew_lease(db: Collections, task_id: str, worker: str, lease_seconds: float) -> dict[str, Any] | None:
    """Extend a running task's lease; None when it is no longer running on ``worker`` (it was reaped)."""
    with PROCESS_GUARD:
        return db.tasks.find_one_and_update(
            {"_id": task_id, "state": TaskState.RUNNING.value, "worker": worker},
            {"$set": {"lease_expires": utcnow() + timedelta(seconds=lease_seconds)}},
            projection={"cancel_requested": 1}, return_document=ReturnDocument.AFTER)


def finish(db: Collections, task_id: str, worker: str, state: TaskState, *, result: Any = None,
           error: dict[str, Any] | None = None) -> bool:
    """Record the outcome, unless the task was reaped meanwhile; true if recorded."""
    with PROCESS_GUARD:
        updated = db.tasks.update_one(
            {"_id": task_id, "state": TaskState.RUNNING.value, "worker": worker},
            {"$set": {"state": state.value, "result": result, "error": error, "finished": utcnow()},
             "$unset": {"lease_expires": ""}})
    if updated.matched_count == 0:
        log.warning("task %s was no longer running on %s; outcome %s not recorded", task_id, worker, state.value)
    return updated.matched_count == 1


def end_running(db: Collections, task_id: str, code: str, description: str, **condition: Any) -> bool:
    """End a running task as error (the reaper's verdict), if it still matches ``condition``."""
    with PROCESS_GUARD:
        updated = db.tasks.update_one(
            {"_id": task_id, "state": TaskState.RUNNING.value, **condition},
            {"$set": {"state": TaskState.ERROR.value, "finished": utcnow(),
                      "error": {"code": code, "description": description}},
             "$unset": {"lease_expires": ""}})
    return updated.modified_count == 1


# --- cancel -------------------------------------------------------------------------


class TaskNotCancelable(Exception):
    def __init__(self, task: dict[str, Any]) -> None:
        super().__init__(f"task {task['_id']} is {task['state']}: it has ended and cannot be canceled")
        self.task = task


def cancel(services: Any, task_id: str) -> dict[str, Any] | None:
    """Cancel a task; None if there is no such task, ``TaskNotCancelable`` if it has ended.

    A waiting task is canceled at once and never starts. A running one gets
    ``cancel_requested`` and stops at its next safe point (its worker sees the
    request when it renews its lease), ending ``canceled``.
    """
    db = services.db
    with PROCESS_GUARD:
        task = db.tasks.find_one_and_update(
            {"_id": task_id, "state": TaskState.WAITING.value},
            {"$set": {"state": TaskState.CANCELED.value, "finished": utcnow()}},
            return_document=ReturnDocument.AFTER)
        if task is None:
            task = db.tasks.find_one_and_update(
                {"_id": task_id, "state": TaskState.RUNNING.value},
                {"$set": {"cancel_requested": True}}, return_document=ReturnDocument.AFTER)
            if task is not None:
                return task
    if task is None:
        if (existing := get_task(db, task_id)) is None:
            return None
        raise TaskNotCancelable(existing)
    dispatch_next(services, task.get("resources") or [])  # it may have been the head of its queue
    webhooks.task_ended(services, task_id)  # canceled while waiting: it has ended
    return task


# --- reading ------------------------------------------------------------------------


def find_pending(db: Collections, task_type: str, resource: str,
                 states: Iterable[TaskState] = (TaskState.WAITING,)) -> dict[str, Any] | None:
    """The newest task of ``task_type`` on ``resource`` still in one of ``states`` (a read: ``submit`` is
    what prevents twins)."""
    return db.tasks.find_one({"task_type": task_type, "resources": resource,
                              "state": {"$in": [state.value for state in states]}},
                             sort=[("created", -1)])


def get_task(db: Collections, task_id: str) -> dict[str, Any] | None:
    return db.tasks.find_one({"_id": task_id})


MAX_PAGE = 1000  #: Largest page of ``list_tasks``.


def list_tasks(db: Collections, states: Iterable[str] = (), limit: int = 100, *, types: Iterable[str] = (),
               resource: str | None = None, since: datetime | None = None, until: datetime | None = None,
               before: str | None = None) -> list[dict[str, Any]]:
    """Tasks newest first, filtered; ``before`` is the id of the last task of the previous page.

    Each filter has an index that starts with it and ends with ``queued`` (the order tasks were made in).
    """
    query: dict[str, Any] = {}
    if states := list(states):
        query["state"] = {"$in": states}
    if types := list(types):
        query["task_type"] = {"$in": types}
    if resource:
        query["resources"] = resource
    created: dict[str, Any] = {}
    if since is not None:
        created["$gte"] = since
    if until is not None:
        created["$lt"] = until
    if created:
        query["created"] = created
    if before:
        last = db.tasks.find_one({"_id": before}, {"queued": 1})
        if last is not None:
            query = {"$and": [query, _earlier(last)]}
    cursor = db.tasks.find(query).sort([("queued", -1), ("_id", -1)])
    return list(cursor.limit(max(1, min(limit, MAX_PAGE)))) if limit else list(cursor)


def spawned_tasks(db: Collections, task_id: str) -> list[dict[str, Any]]:
    """The tasks ``task_id`` asked for while it ran (a copy's publish), oldest first."""
    return list(db.tasks.find({"parent": task_id}, {"task_type": 1, "state": 1, "created": 1})
                .sort([("created", 1), ("_id", 1)]))


def purge_finished(db: Collections, finished_before: datetime) -> int:
    """Delete tasks that ended before ``finished_before``; return how many."""
    with PROCESS_GUARD:
        return db.tasks.delete_many({"state": {"$in": FINAL}, "finished": {"$lt": finished_before}}).deleted_count


def task_href(task_id: str) -> str:
    return f"/pulp/api/v2/tasks/{task_id}/"


def task_json(task: dict[str, Any], spawned: Iterable[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A task as the admin API shows it (``spawned``: its spawned tasks, shown when given)."""
    body = {
        "task_id": task["_id"],
        "_href": task_href(task["_id"]),
        "task_type": task["task_type"],
        "resources": task["resources"],
        "state": task["state"],
        "progress_report": task.get("progress") or {},
        "result": task.get("result"),
        "error": task.get("error"),
        "created": isoformat(task.get("created")),
        "start_time": isoformat(task.get("started")),
        "finish_time": isoformat(task.get("finished")),
        "worker_name": task.get("worker"),
        "user": task.get("user"),
        "parent": task.get("parent"),
        "cancel_requested": bool(task.get("cancel_requested")),
    }
    if spawned is not None:
        body["spawned_tasks"] = [{"task_id": child["_id"], "_href": task_href(child["_id"]),
                                  "task_type": child.get("task_type"), "state": child.get("state")}
                                 for child in spawned]
    return body
