"""``/pulp/api/v2/tasks/``: list (with a state filter), show and cancel tasks."""
from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Blueprint, request
from pymongo import ReturnDocument
from werkzeug.wrappers import Response

from pulp_registry import tasks
from pulp_registry.access import auth_required
from pulp_registry.api.errors import Conflict, InvalidBody, NotFound
from pulp_registry.api.responses import json_response
from pulp_registry.db import utcnow
from pulp_registry.permissions import DELETE, READ
from pulp_registry.services import current_services

blueprint = Blueprint("api_tasks", __name__)
log = logging.getLogger(__name__)

KNOWN_STATES = tuple(state.value for state in tasks.TaskState)


class TaskNotCancelable(Exception):
    def __init__(self, task: dict[str, Any]) -> None:
        super().__init__(f"task {task['_id']} is {task['state']}: only a waiting task can be canceled")
        self.task = task


def parse_states(value: str | None) -> list[str]:
    """``waiting,running`` -> ``["waiting", "running"]``; an unknown state is a 400 naming ``state``."""
    if not value:
        return []
    states = [state.strip() for state in value.split(",") if state.strip()]
    for state in states:
        if state not in KNOWN_STATES:
            raise InvalidBody(f"unknown task state {state!r}; known: {', '.join(KNOWN_STATES)}", field="state")
    return states


def cancel_task(services: Any, task_id: str) -> dict[str, Any] | None:
    """Cancel a waiting task atomically; None if there is no such task, ``TaskNotCancelable`` if it started.

    The state change is what counts (a worker skips a canceled task); revoking the
    Celery message is only a courtesy and may fail on some brokers.
    """
    task = services.db.tasks.find_one_and_update(
        {"_id": task_id, "state": tasks.TaskState.WAITING.value},
        {"$set": {"state": tasks.TaskState.CANCELED.value, "finished": utcnow()}},
        return_document=ReturnDocument.AFTER)
    if task is None:
        existing = tasks.get_task(services.db, task_id)
        if existing is None:
            return None
        raise TaskNotCancelable(existing)
    if services.celery is not None:
        # In the background: an unreachable broker retries for seconds, and the answer does not depend on it.
        threading.Thread(target=_revoke, args=(services.celery, task_id), name=f"revoke-{task_id}",
                         daemon=True).start()
    return task


def _revoke(celery: Any, task_id: str) -> None:
    try:
        celery.control.revoke(task_id)
    except Exception as exc:  # noqa: BLE001 - memory:// or an unreachable broker: the DB state decides
        log.debug("could not revoke task %s: %s", task_id, exc)


@blueprint.get("/tasks/")
@auth_required(READ)
def list_tasks() -> Response:
    states = parse_states(request.args.get("state"))
    return json_response([tasks.task_json(task) for task in tasks.list_tasks(current_services().db, states)])


@blueprint.get("/tasks/<task_id>/")
@auth_required(READ)
def show_task(task_id: str) -> Response:
    task = tasks.get_task(current_services().db, task_id)
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist")
    return json_response(tasks.task_json(task))


@blueprint.delete("/tasks/<task_id>/")
@auth_required(DELETE)
def delete_task(task_id: str) -> Response:
    try:
        task = cancel_task(current_services(), task_id)
    except TaskNotCancelable as exc:
        raise Conflict(str(exc)) from None
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist")
    return json_response(tasks.task_json(task))
