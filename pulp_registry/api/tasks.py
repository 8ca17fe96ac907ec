"""``/pulp/api/v2/tasks/``: list (filtered, paged, newest first), show and cancel tasks."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import tasks
from pulp_registry.access import auth_required
from pulp_registry.api.errors import Conflict, InvalidBody, NotFound
from pulp_registry.api.responses import json_response
from pulp_registry.permissions import DELETE, READ
from pulp_registry.services import current_services

blueprint = Blueprint("api_tasks", __name__)

KNOWN_STATES = tuple(state.value for state in tasks.TaskState)
DEFAULT_PAGE = 100


def parse_states(value: str | None) -> list[str]:
    """``waiting,running`` -> ``["waiting", "running"]``; an unknown state is a 400 naming ``state``."""
    states = [state.strip() for state in (value or "").split(",") if state.strip()]
    for state in states:
        if state not in KNOWN_STATES:
            raise InvalidBody(f"unknown task state {state!r}; known: {', '.join(KNOWN_STATES)}", field="state")
    return states


def parse_types(value: str | None) -> list[str]:
    types = [kind.strip() for kind in (value or "").split(",") if kind.strip()]
    for kind in types:
        if kind not in tasks.TASK_NAMES:
            raise InvalidBody(f"unknown task type {kind!r}; known: {', '.join(tasks.TASK_NAMES)}", field="type")
    return types


def parse_time(field: str) -> datetime | None:
    """An ISO 8601 time (``2026-12-02T08:00:00Z``; without a zone, UTC) or a 400 naming ``field``."""
    value = request.args.get(field)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidBody(f"{field} must be an ISO 8601 time such as 2026-12-02T08:00:00Z, got {value!r}",
                          field=field) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def parse_limit() -> int:
    value = request.args.get("limit", str(DEFAULT_PAGE))
    if not value.isdigit() or not 1 <= int(value) <= tasks.MAX_PAGE:
        raise InvalidBody(f"limit must be a number from 1 to {tasks.MAX_PAGE}, got {value!r}", field="limit")
    return int(value)


@blueprint.get("/tasks/")
@auth_required(READ)
def list_tasks() -> Response:
    """A page of tasks, newest first; ``Link: <...>; rel="next"`` names the next page."""
    repository = request.args.get("repository")
    limit = parse_limit()
    found = tasks.list_tasks(current_services().db, parse_states(request.args.get("state")), limit + 1,
                             types=parse_types(request.args.get("type")),
                             resource=tasks.repository_resource(repository) if repository else None,
                             since=parse_time("since"), until=parse_time("until"),
                             before=request.args.get("before"))
    headers = {}
    if len(found) > limit:
        found = found[:limit]
        query = {key: value for key, value in request.args.items() if key != "before"}
        headers["Link"] = f'<{request.path}?{urlencode({**query, "before": found[-1]["_id"]})}>; rel="next"'
    return json_response([tasks.task_json(task) for task in found], headers=headers)


@blueprint.get("/tasks/<task_id>/")
@auth_required(READ)
def show_task(task_id: str) -> Response:
    db = current_services().db
    task = tasks.get_task(db, task_id)
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist")
    return json_response(tasks.task_json(task, tasks.spawned_tasks(db, task_id)))


@blueprint.delete("/tasks/<task_id>/")
@auth_required(DELETE)
def cancel_task(task_id: str) -> Response:
    """200 with a canceled waiting task; 202 when a running one was asked to stop; 409 if it ended."""
    try:
        task = tasks.cancel(current_services(), task_id)
    except tasks.TaskNotCancelable as exc:
        raise Conflict(str(exc)) from None
    if task is None:
        raise NotFound(f"task {task_id!r} does not exist")
    return json_response(tasks.task_json(task), 202 if task["state"] == tasks.TaskState.RUNNING.value else 200)
