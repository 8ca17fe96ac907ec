"""Console pages: the task list, a task's page with its progress, error and result, and cancel.

Each view mirrors its REST twin in ``pulp_registry/api/tasks.py``: READ on ``/pulp/api/v2/tasks/``
for the list, READ on ``/pulp/api/v2/tasks/<id>/`` for a task, DELETE there to cancel (through
``tasks.cancel``, as ``DELETE /tasks/<id>/`` does). ``status.json`` is what ``static/tasks.js``
polls every second or two while a shown task is waiting or running.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import flash, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from pulp_registry import tasks
from pulp_registry.console import task_listing
from pulp_registry.console.pages import allowed, console_blueprint, not_found, render, require
from pulp_registry.permissions import DELETE, READ
from pulp_registry.services import current_services

blueprint = console_blueprint("console_tasks", __name__)


@blueprint.get("/tasks/")
def task_list() -> tuple[str, int]:
    """Tasks newest first, filtered by state, type and repository, a page at a time (``before``)."""
    require(READ, task_listing.TASKS_RESOURCE)
    states, state_error = task_listing.parse_filter(request.args.getlist("state"), task_listing.STATES, "state")
    types, type_error = task_listing.parse_filter(request.args.getlist("type"), task_listing.TYPES, "task type")
    repository = (request.args.get("repository") or "").strip() or None
    rows, next_before = task_listing.task_page(current_services().db, states, types, repository,
                                               request.args.get("before"))
    query = {key: value for key, value in (("state", ",".join(states)), ("type", ",".join(types)),
                                           ("repository", repository or "")) if value}
    base = url_for("console_tasks.task_list")
    newest_url = f"{base}?{urlencode(query)}" if request.args.get("before") else None
    older_url = f"{base}?{urlencode({**query, 'before': next_before})}" if next_before else None
    return render("tasks.html", section="tasks", title="Tasks", rows=rows, states=task_listing.STATES,
                  types=task_listing.TYPES, chosen_state=states[0] if len(states) == 1 else "",
                  chosen_type=types[0] if len(types) == 1 else "", repository=repository or "",
                  errors=[message for message in (state_error, type_error) if message],
                  newest_url=newest_url, older_url=older_url)


@blueprint.get("/tasks/status.json")
def task_status() -> Response:
    """``?ids=a,b``: state and progress of each task (READ on each, as ``GET /tasks/<id>/`` needs)."""
    ids = list(dict.fromkeys(part.strip() for part in (request.args.get("ids") or "").split(",") if part.strip()))
    if not ids or len(ids) > task_listing.MAX_POLLED:
        response = jsonify({"message": f"ids: give 1 to {task_listing.MAX_POLLED} task ids, comma-separated"})
        response.status_code = 400
        return response
    if not allowed(READ, task_listing.TASKS_RESOURCE):
        for task_id in ids:
            require(READ, tasks.task_href(task_id))
    response = jsonify({"tasks": task_listing.task_statuses(current_services().db, ids)})
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.get("/tasks/<task_id>/")
def task(task_id: str) -> tuple[str, int]:
    """Every field of a task, its error or result, the tasks it spawned; Cancel while it may be canceled."""
    require(READ, tasks.task_href(task_id))
    db = current_services().db
    found = tasks.get_task(db, task_id)
    if found is None:
        not_found(f"There is no task {task_id}: it never existed, or it ended long ago and was purged.")
    names = task_listing.repository_names(db, [found])
    row = task_listing.task_row(found, names)
    spawned = tasks.spawned_tasks(db, task_id)
    return render("task.html", section="tasks", title=f"Task {found['task_type']}", task=row,
                  spawned=spawned, sync_result=task_listing.sync_result(found),
                  may_cancel=row["cancelable"] and allowed(DELETE, tasks.task_href(task_id)),
                  kwargs=found.get("kwargs") or {})


@blueprint.post("/tasks/<task_id>/cancel")
def cancel(task_id: str) -> Response:
    """Cancel as ``DELETE /tasks/<id>/`` does; an ended task is refused with a message and stays as it was."""
    require(DELETE, tasks.task_href(task_id))
    try:
        canceled = tasks.cancel(current_services(), task_id)
    except tasks.TaskNotCancelable as exc:
        flash(f"Not canceled: task {task_id} is {exc.task['state']}; it has ended and cannot be canceled.",
              "error")
        return redirect(url_for("console_tasks.task", task_id=task_id))
    if canceled is None:
        not_found(f"There is no task {task_id}.")
    if canceled["state"] == tasks.TaskState.RUNNING.value:
        flash("Cancel requested: the task stops at its next safe point and then shows as canceled.", "success")
    else:
        flash("Task canceled: it will not run.", "success")
    return redirect(url_for("console_tasks.task", task_id=task_id))
