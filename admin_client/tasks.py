"""Waiting for a task the admin API spawned (``202`` call reports): poll its href until it ends."""
from __future__ import annotations

import time
from typing import Any

from admin_client.connection import AdminClient, AdminError

FINAL_TASK_STATES = ("finished", "error", "canceled")
POLL_INTERVAL = 0.5


def task_error(task: dict[str, Any]) -> str:
    error = task.get("error")
    if isinstance(error, dict):
        return str(error.get("description") or error.get("message") or error.get("code") or error)
    return str(error or "no reason given")


def spawned_task_href(report: Any) -> str | None:
    """The first spawned task's href in a call report (``{"spawned_tasks": [{"_href": ...}]}``)."""
    if not isinstance(report, dict):
        return None
    spawned = report.get("spawned_tasks")
    if isinstance(spawned, list) and spawned and isinstance(spawned[0], dict):
        return spawned[0].get("_href")
    return None


def wait_for_task(client: AdminClient, href: str, timeout: float, what: str = "task") -> dict[str, Any]:
    """Poll ``href`` until the task is finished; a task that ends otherwise, or outlives ``timeout``, is an error.

    ``what`` names the task in messages (``publish task``, ``delete task``).
    """
    deadline = time.monotonic() + timeout
    while True:
        task = client.get_json(href)
        state = task.get("state")
        if state in FINAL_TASK_STATES:
            if state != "finished":
                raise AdminError(f"{what} {task.get('task_id', href)} ended {state}: {task_error(task)}")
            return task
        if time.monotonic() > deadline:
            raise AdminError(f"{what} {task.get('task_id', href)} still {state} after {timeout:g} s; "
                             f"check it later with GET {href}")
        time.sleep(POLL_INTERVAL)
