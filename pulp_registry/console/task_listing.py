"""What the task pages show of a task document: rows, progress bars, the polling answer.

Plain functions over ``tasks`` (the one module that writes task state): the pages read what
``tasks.list_tasks`` and ``tasks.get_task`` give, the REST API's ``tasks.task_json`` shape
included, and only reshape it for people (one progress bar per task, repository names, times).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping

from pulp_registry import tasks
from pulp_registry.db import Collections, as_utc

#: The REST resource the task pages mirror (``GET /pulp/api/v2/tasks/``).
TASKS_RESOURCE = "/pulp/api/v2/tasks/"
STATES = tuple(state.value for state in tasks.TaskState)
TYPES = tuple(tasks.TASK_NAMES)
PAGE_SIZE = 50
#: Most ids one poll of ``status.json`` may ask about.
MAX_POLLED = 100
REPOSITORY_PREFIX = tasks.repository_resource("")


def format_time(value: datetime | None) -> str:
    """``2026-12-02 08:00:05 UTC``, or an empty string for a time not reached yet."""
    value = as_utc(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def repository_ids(task: Mapping[str, Any]) -> list[str]:
    """The repositories a task works on (its ``repository:<id>`` resources)."""
    return [resource[len(REPOSITORY_PREFIX):] for resource in task.get("resources") or []
            if resource.startswith(REPOSITORY_PREFIX)]


def _steps(progress: Any) -> list[dict[str, Any]]:
    """``{"blobs": {"done": 2, "total": 5}}`` -> ``[{"step": "blobs", "done": 2, "total": 5}]`` (a report
    without a step, stored as ``progress`` itself, is one unnamed step)."""
    if not isinstance(progress, Mapping) or not progress:
        return []
    if "done" in progress or "total" in progress:
        return [{"step": "", "done": progress.get("done"), "total": progress.get("total")}]
    return [{"step": str(step), "done": report.get("done"), "total": report.get("total")}
            for step, report in progress.items() if isinstance(report, Mapping)]


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def progress_bar(task: Mapping[str, Any]) -> dict[str, Any]:
    """One bar for a task: the step under way (the first not complete, else the last reported).

    ``value``/``max`` feed ``<progress>``; ``value`` None is an indeterminate bar (nothing reported
    yet while running). A finished task shows a full bar; an ended one its last report as it stood.
    """
    steps = _steps(task.get("progress"))
    state = task.get("state")
    if state == tasks.TaskState.FINISHED.value:
        return {"value": 1, "max": 1, "label": "done", "percent": 100, "steps": steps}
    current = next((step for step in steps if _number(step["total"]) is not None and _number(step["done"]) is not None
                    and step["done"] < step["total"]), steps[-1] if steps else None)
    if current is None or _number(current["total"]) is None or _number(current["done"]) is None:
        label = {"waiting": "waiting to start", "running": "starting"}.get(str(state), "no progress reported")
        return {"value": None, "max": 1, "label": label, "percent": None, "steps": steps}
    total, done = current["total"], min(current["done"], current["total"])
    name = f"{current['step']} " if current["step"] else ""
    if total <= 0:
        return {"value": 1, "max": 1, "label": f"{name}0 of 0", "percent": 100, "steps": steps}
    return {"value": done, "max": total, "label": f"{name}{done} of {total}", "percent": int(100 * done / total),
            "steps": steps}


def repository_names(db: Collections, found: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Id -> name of the repositories the tasks name that exist (one query for the page)."""
    ids = sorted({repo_id for task in found for repo_id in repository_ids(task)})
    if not ids:
        return {}
    return {repo["_id"]: repo.get("name") or repo["_id"]
            for repo in db.repositories.find({"_id": {"$in": ids}}, {"_id": 1, "name": 1})}


def cancelable(task: Mapping[str, Any]) -> bool:
    """Waiting, or running and not yet asked to stop (what ``tasks.cancel`` can still do something for)."""
    return task.get("state") == tasks.TaskState.WAITING.value or (
        task.get("state") == tasks.TaskState.RUNNING.value and not task.get("cancel_requested"))


def task_row(task: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """A task as the pages show it: the REST fields plus the bar, times for people and known repositories."""
    return {
        **tasks.task_json(dict(task)),
        "repositories": [{"id": repo_id, "name": names.get(repo_id, repo_id), "known": repo_id in names}
                         for repo_id in repository_ids(task)],
        "bar": progress_bar(task),
        "created_text": format_time(task.get("created")),
        "started_text": format_time(task.get("started")),
        "finished_text": format_time(task.get("finished")),
        "ended": task.get("state") in tasks.FINAL,
        "cancelable": cancelable(task),
    }


def parse_filter(values: Iterable[str], known: tuple[str, ...], what: str) -> tuple[list[str], str | None]:
    """The chosen values of a filter; an unknown one is left out and named in the message."""
    chosen, unknown = [], []
    for value in values:
        for part in value.split(","):
            if part.strip():
                (chosen if part.strip() in known else unknown).append(part.strip())
    message = f"Unknown {what} {', '.join(unknown)!s}; known: {', '.join(known)}." if unknown else None
    return chosen, message


def task_page(db: Collections, states: list[str], types: list[str], repository: str | None,
              before: str | None, limit: int = PAGE_SIZE) -> tuple[list[dict[str, Any]], str | None]:
    """A page of rows, newest first, as ``GET /pulp/api/v2/tasks/`` filters them; and the ``before`` of the next."""
    found = tasks.list_tasks(db, states, limit + 1, types=types,
                             resource=tasks.repository_resource(repository) if repository else None,
                             before=before or None)
    next_before = None
    if len(found) > limit:
        found = found[:limit]
        next_before = found[-1]["_id"]
    names = repository_names(db, found)
    return [task_row(task, names) for task in found], next_before


def status_json(task: Mapping[str, Any]) -> dict[str, Any]:
    """What ``tasks.js`` updates while a task runs: state, bar, times."""
    bar = progress_bar(task)
    return {"task_id": task["_id"], "state": task.get("state"), "ended": task.get("state") in tasks.FINAL,
            "cancel_requested": bool(task.get("cancel_requested")),
            "progress": {key: bar[key] for key in ("value", "max", "label", "percent")},
            "steps": bar["steps"], "started": format_time(task.get("started")),
            "finished": format_time(task.get("finished"))}


def task_statuses(db: Collections, ids: list[str]) -> list[dict[str, Any]]:
    """The status of each existing task of ``ids`` (unknown ids are left out)."""
    found = {task["_id"]: task for task in db.tasks.find({"_id": {"$in": ids}},
                                                          {"state": 1, "progress": 1, "started": 1,
                                                           "finished": 1, "cancel_requested": 1})}
    return [status_json(found[task_id]) for task_id in ids if task_id in found]


def sync_result(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tags a (finished) sync or sync preview added/would add, moved, removed and skipped."""
    result = task.get("result")
    if task.get("task_type") not in ("sync", "sync_preview") or not isinstance(result, Mapping):
        return None

    def names(values: Any) -> list[str]:
        return [value.get("tag", "") if isinstance(value, Mapping) else str(value) for value in values or []]

    return {"dry_run": bool(result.get("dry_run")) or task.get("task_type") == "sync_preview",
            "added": names(result.get("added")), "updated": names(result.get("updated")),
            "removed": names(result.get("removed")),
            "skipped": [value if isinstance(value, Mapping) else {"tag": str(value), "reason": ""}
                        for value in result.get("skipped") or []],
            "manifests": result.get("manifests", 0), "blobs": result.get("blobs", 0),
            "bytes": result.get("bytes_to_fetch", result.get("bytes", 0)),
            "publish_task": result.get("publish_task")}
