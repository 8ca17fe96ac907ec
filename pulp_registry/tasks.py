"""Task status documents (Pulp's model) and how the admin side spawns a task.

A task document is written (``waiting``) before the message goes to the
broker, so every task is visible from the moment it is asked for. Workers move
it to ``running`` and then ``finished``, ``error`` or ``canceled``.

No twins: a task of a type in ``PENDING_STATES`` carries ``pending_key``
(``<type>:<resources>``), under a unique sparse index, from its creation. Asking
again for the same work while that task is still pending answers it; two API
processes asking at once insert one document and the other gets a duplicate
key, then answers the winner. The key outlives the pending states: the next
``submit`` of the same work drops it from the old task with one write
conditioned on that task no longer being pending, and tries again.
"""
from __future__ import annotations

import enum
import uuid
from typing import Any, Iterable

from pulp_registry.db import Collections, DuplicateKeyError, isoformat, utcnow


class TaskState(str, enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELED = "canceled"


FINAL_STATES = frozenset({TaskState.FINISHED, TaskState.ERROR, TaskState.CANCELED})

#: Task types and the Celery task that runs each (``workers/tasks.py``).
TASK_NAMES = {
    "publish": "workers.tasks.publish",
    "delete_repository": "workers.tasks.delete_repository",
}


#: The states in which a task of a type counts as pending: asked again, the same task is answered.
#: A running publish may have read the repository already, so only a waiting one stands for a new request.
PENDING_STATES: dict[str, tuple[TaskState, ...]] = {
    "publish": (TaskState.WAITING,),
    "delete_repository": (TaskState.WAITING, TaskState.RUNNING),
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


def _new_task(task_type: str, resources: Iterable[str], kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        "_id": str(uuid.uuid4()),
        "task_type": task_type,
        "resources": list(resources),
        "kwargs": kwargs,
        "state": TaskState.WAITING.value,
        "progress": {},
        "result": None,
        "error": None,
        "created": utcnow(),
        "started": None,
        "finished": None,
        "worker": None,
    }


def create_task(db: Collections, task_type: str, resources: Iterable[str],
                kwargs: dict[str, Any]) -> dict[str, Any]:
    """Insert a waiting task document as given, without the twin check (``submit`` is how work is asked for)."""
    task = _new_task(task_type, resources, kwargs)
    db.tasks.insert_one(task)
    return task


def create_unless_pending(db: Collections, task_type: str, resources: Iterable[str],
                          kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A new waiting task, or the pending task of the same work; and whether it is new.

    Safe when several processes ask at once: the unique ``pending_key`` lets one insert win.
    """
    from pulp_registry.locks import PROCESS_GUARD  # locks imports this module

    resources = list(resources)
    key = pending_key(task_type, resources)
    if key is None:
        return create_task(db, task_type, resources, kwargs), True
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
            task = {**_new_task(task_type, resources, kwargs), "pending_key": key}
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


def submit(services: Any, task_type: str, resources: Iterable[str], **kwargs: Any) -> dict[str, Any]:
    """Record a waiting task and send it to the workers; return its document.

    For work with a pending twin (``PENDING_STATES``), the pending task is returned and nothing is sent.
    """
    task, created = create_unless_pending(services.db, task_type, resources, kwargs)
    if not created:
        return task
    try:
        services.celery.signature(TASK_NAMES[task_type], kwargs={"task_id": task["_id"], **kwargs}).apply_async(
            task_id=task["_id"])
    except Exception as exc:
        # Never sent, it would never run: end it, so that it answers no later request for the same work.
        services.db.tasks.update_one(
            {"_id": task["_id"], "state": TaskState.WAITING.value},
            {"$set": {"state": TaskState.ERROR.value, "finished": utcnow(),
                      "error": {"code": type(exc).__name__, "description": f"could not send the task: {exc}"}},
             "$unset": {"pending_key": ""}})
        raise
    return services.db.tasks.find_one({"_id": task["_id"]}) or task


def find_pending(db: Collections, task_type: str, resource: str,
                 states: Iterable[TaskState] = (TaskState.WAITING,)) -> dict[str, Any] | None:
    """The newest task of ``task_type`` on ``resource`` still in one of ``states`` (a read: ``submit`` is
    what prevents twins)."""
    return db.tasks.find_one({"task_type": task_type, "resources": resource,
                              "state": {"$in": [state.value for state in states]}},
                             sort=[("created", -1)])


def get_task(db: Collections, task_id: str) -> dict[str, Any] | None:
    return db.tasks.find_one({"_id": task_id})


def list_tasks(db: Collections, states: Iterable[str] = (), limit: int = 0) -> list[dict[str, Any]]:
    query: dict[str, Any] = {}
    states = list(states)
    if states:
        query["state"] = {"$in": states}
    return list(db.tasks.find(query).sort("created", -1).limit(limit))


def task_json(task: dict[str, Any]) -> dict[str, Any]:
    """A task as the admin API shows it."""
    return {
        "task_id": task["_id"],
        "_href": f"/pulp/api/v2/tasks/{task['_id']}/",
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
    }
