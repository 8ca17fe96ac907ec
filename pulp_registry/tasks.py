"""Task status documents (Pulp's model) and how the admin side spawns a task.

A task document is written (``waiting``) before the message goes to the
broker, so every task is visible from the moment it is asked for. Workers move
it to ``running`` and then ``finished``, ``error`` or ``canceled``.
"""
from __future__ import annotations

import enum
import uuid
from typing import Any, Iterable

from pulp_registry.db import Collections, isoformat, utcnow


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


def repository_resource(repo_id: str) -> str:
    """The lock name of a repository: two tasks never change one at once."""
    return f"repository:{repo_id}"


def create_task(db: Collections, task_type: str, resources: Iterable[str],
                kwargs: dict[str, Any]) -> dict[str, Any]:
    task = {
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
    db.tasks.insert_one(task)
    return task


def submit(services: Any, task_type: str, resources: Iterable[str], **kwargs: Any) -> dict[str, Any]:
    """Record a waiting task and send it to the workers; return its document."""
    task = create_task(services.db, task_type, resources, kwargs)
    services.celery.signature(TASK_NAMES[task_type], kwargs={"task_id": task["_id"], **kwargs}).apply_async(
        task_id=task["_id"])
    return services.db.tasks.find_one({"_id": task["_id"]}) or task


def find_pending(db: Collections, task_type: str, resource: str,
                 states: Iterable[TaskState] = (TaskState.WAITING,)) -> dict[str, Any] | None:
    """The newest task of ``task_type`` on ``resource`` still in one of ``states``.

    Asking again for work that is already pending returns that task instead of a twin.
    """
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
