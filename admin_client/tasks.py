"""Waiting for a task the admin API spawned (``202`` call reports): poll its href until it ends.

A task reports progress per step (``progress_report: {step: {done, total, description}}``);
``wait_for_task(..., show_progress=True)`` draws it as a bar on a terminal and as
one status line per change otherwise (logs and CI read those).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import click

from admin_client.connection import AdminClient, AdminError
from admin_client.listing import API

FINAL_TASK_STATES = ("finished", "error", "canceled")
POLL_INTERVAL = 0.5


@dataclass(frozen=True)
class Step:
    """One step of a task's progress report."""

    name: str
    done: int | None
    total: int | None
    description: str = ""

    def __str__(self) -> str:
        if self.total is not None:
            return f"{self.name} {self.done or 0}/{self.total}"
        if self.done is not None:
            return f"{self.name} {self.done}"
        return self.name


def task_error(task: dict[str, Any]) -> str:
    error = task.get("error")
    if isinstance(error, dict):
        return str(error.get("description") or error.get("message") or error.get("code") or error)
    return str(error or "no reason given")


def ended_message(task: dict[str, Any], what: str = "task") -> str:
    """``copy task 1f3c... ended error: <reason>`` (a canceled task may have no reason)."""
    reason = f": {task_error(task)}" if task.get("error") or task.get("state") == "error" else ""
    return f"{what} {task.get('task_id', '?')} ended {task.get('state')}{reason}"


def task_href(task_id: str) -> str:
    return f"{API}/tasks/{task_id}/"


def spawned_task_href(report: Any) -> str | None:
    """The first spawned task's href in a call report (``{"spawned_tasks": [{"_href": ...}]}``)."""
    if not isinstance(report, dict):
        return None
    spawned = report.get("spawned_tasks")
    if isinstance(spawned, list) and spawned and isinstance(spawned[0], dict):
        first = spawned[0]
        return first.get("_href") or (task_href(first["task_id"]) if first.get("task_id") else None)
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def progress_steps(task: dict[str, Any]) -> list[Step]:
    """The steps of ``progress_report`` in the order the server wrote them."""
    report = task.get("progress_report")
    if not isinstance(report, dict):
        return []
    steps = []
    for name, value in report.items():
        value = value if isinstance(value, dict) else {}
        steps.append(Step(str(name), _count(value.get("done")), _count(value.get("total")),
                          str(value.get("description") or "")))
    return steps


def progress_totals(task: dict[str, Any]) -> tuple[int, int]:
    """(done, total) over the steps that know their total: what a progress bar shows."""
    steps = [step for step in progress_steps(task) if step.total is not None]
    return sum(min(step.done or 0, step.total or 0) for step in steps), sum(step.total or 0 for step in steps)


def status_line(task: dict[str, Any], what: str = "task") -> str:
    """``publish task 1f3c...: running (copy 3/10, publish 0/1)``: one line for logs."""
    steps = progress_steps(task)
    detail = f" ({', '.join(str(step) for step in steps)})" if steps else ""
    cancel = ", cancel requested" if task.get("cancel_requested") and task.get("state") == "running" else ""
    return f"{what} {task.get('task_id', '?')}: {task.get('state', '?')}{cancel}{detail}"


def current_step(task: dict[str, Any]) -> str:
    """The step still in progress (or the last one), as the bar's label shows it."""
    steps = progress_steps(task)
    for step in steps:
        if step.total is None or (step.done or 0) < step.total:
            return step.description or step.name
    return (steps[-1].description or steps[-1].name) if steps else str(task.get("state", ""))


class ProgressDisplay:
    """A click progress bar on a terminal; elsewhere a status line each time the status changes."""

    def __init__(self, what: str, terminal: bool | None = None, file: Any = None) -> None:
        self.what = what
        self.file = file
        self.terminal = _stderr_is_terminal() if terminal is None else terminal
        self.bar: Any = None
        self.last_line = ""

    def show(self, task: dict[str, Any]) -> None:
        if not self.terminal:
            line = status_line(task, self.what)
            if line != self.last_line:
                click.echo(line, file=self.file, err=self.file is None)
                self.last_line = line
            return
        done, total = progress_totals(task)
        if self.bar is None:
            self.bar = click.progressbar(length=max(total, 1), label=self.what, file=self.file or sys.stderr,
                                         show_pos=True,
                                         item_show_func=lambda item: item)
            self.bar.__enter__()
        if total:
            self.bar.length = total
        self.bar.current_item = current_step(task)
        self.bar.pos = min(done, self.bar.length)
        self.bar.render_progress()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def wait_for_task(client: AdminClient, href: str, timeout: float, what: str = "task",
                  show_progress: bool = False, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll ``href`` until the task is finished; a task that ends otherwise, or outlives ``timeout``, is an error.

    ``what`` names the task in messages (``publish task``, ``delete task``).
    """
    deadline = time.monotonic() + timeout
    display = ProgressDisplay(what) if show_progress else None
    try:
        while True:
            task = client.get_json(href)
            state = task.get("state")
            if display is not None:
                display.show(task)
            if state in FINAL_TASK_STATES:
                if state != "finished":
                    if display is not None:
                        display.close()
                    raise AdminError(ended_message(task, what))
                return task
            if time.monotonic() > deadline:
                if display is not None:
                    display.close()
                raise AdminError(f"{what} {task.get('task_id', href)} still {state} after {timeout:g} s; "
                                 f"see registry-admin tasks show {task.get('task_id', href)}")
            sleep(POLL_INTERVAL)
    finally:
        if display is not None:
            display.close()


# --- the --wait/--timeout options of every command that queues a task ------------------

WAIT_OPTION = click.option("--wait/--no-wait", default=True, show_default=True,
                           help="Wait for the task the server starts.")
TIMEOUT_OPTION = click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
                              metavar="SECONDS", help="Seconds to wait for the task.")


def task_id_of(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1]


def finish_task(client: AdminClient, report: Any, wait: bool, timeout: float, what: str,
                show_progress: bool = False) -> dict[str, Any] | None:
    """Wait for the call report's task, or say how to follow it (``--no-wait``)."""
    href = spawned_task_href(report)
    if href is None:
        return None
    if not wait:
        click.echo(f"Started {what} {task_id_of(href)} (not waiting: --no-wait); "
                   f"follow it with: registry-admin tasks wait {task_id_of(href)}", err=True)
        return None
    if not show_progress:
        click.echo(f"Waiting for the {what} ...", err=True)
    return wait_for_task(client, href, timeout, what=what, show_progress=show_progress)
