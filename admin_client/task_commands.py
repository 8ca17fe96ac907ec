"""``registry-admin tasks ...``: list, show, cancel and wait for the server's tasks (publish, copy, ...)."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from admin_client.connection import AdminClient, AdminError
from admin_client.listing import (API, OUTPUT_OPTION, echo_json, key_values, render_fields, render_table,
                                  repository_by_name, short_time)
from admin_client.reference import validate_name
from admin_client.tasks import ended_message, progress_steps, task_href, wait_for_task

TASK_STATES = ("waiting", "running", "finished", "error", "canceled")
REPOSITORY_RESOURCE = "repository:"


def task_path(task_id: str) -> str:
    return task_href(quote(task_id, safe=""))


def repository_names(client: AdminClient) -> dict[str, str]:
    """Repository id -> registry name, for the REPOSITORY column (tasks name repositories by id)."""
    return {repo["id"]: repo["name"] for repo in client.get_json(f"{API}/repositories/")
            if isinstance(repo, dict) and repo.get("id")}


def task_repositories(task: dict[str, Any], names: dict[str, str]) -> str:
    """The repositories a task locks, by name (by id when the repository is gone)."""
    found = [str(resource)[len(REPOSITORY_RESOURCE):] for resource in task.get("resources") or []
             if str(resource).startswith(REPOSITORY_RESOURCE)]
    return ", ".join(names.get(repo_id, repo_id) for repo_id in found) or "-"


def state_text(task: dict[str, Any]) -> str:
    if task.get("state") == "running" and task.get("cancel_requested"):
        return "running (cancel requested)"
    return str(task.get("state") or "-")


def tasks_table(tasks: list[dict[str, Any]], names: dict[str, str]) -> str:
    """ID, TYPE, STATE, REPOSITORY, USER, CREATED, FINISHED; in the server's order (newest first)."""
    rows = [(task.get("task_id"), task.get("task_type") or "-", state_text(task), task_repositories(task, names),
             task.get("user") or "-", short_time(task.get("created")), short_time(task.get("finish_time")))
            for task in tasks]
    return render_table(("ID", "TYPE", "STATE", "REPOSITORY", "USER", "CREATED", "FINISHED"), rows)


def progress_text(task: dict[str, Any]) -> str:
    """One ``step: done/total  description`` per step, joined for the Progress field."""
    lines = []
    for step in progress_steps(task):
        count = f"{step.done or 0}/{step.total}" if step.total is not None else str(step.done or "-")
        lines.append(f"{step.name}: {count}{'  ' + step.description if step.description else ''}")
    return "; ".join(lines) or "-"


def spawned_text(task: dict[str, Any]) -> str:
    spawned = [child for child in task.get("spawned_tasks") or [] if isinstance(child, dict)]
    return ", ".join(f"{child.get('task_id')} ({child.get('task_type') or 'task'}, {child.get('state') or '?'})"
                     for child in spawned) or "-"


def task_fields(task: dict[str, Any], names: dict[str, str]) -> str:
    error = task.get("error")
    return render_fields([
        ("ID", task.get("task_id")),
        ("Type", task.get("task_type")),
        ("State", state_text(task)),
        ("Repository", task_repositories(task, names)),
        ("User", task.get("user")),
        ("Worker", task.get("worker_name")),
        ("Created", short_time(task.get("created"))),
        ("Started", short_time(task.get("start_time"))),
        ("Finished", short_time(task.get("finish_time"))),
        ("Progress", progress_text(task)),
        ("Result", key_values(task.get("result"))),
        ("Error", key_values(error) if isinstance(error, dict) else error),
        ("Parent", task.get("parent")),
        ("Spawned", spawned_text(task)),
    ])


@click.group("tasks", short_help="List, show, cancel and wait for tasks.", epilog="""\b
Examples:
  registry-admin tasks list --state running
  registry-admin tasks show 5f0c2d1e
  registry-admin tasks wait 5f0c2d1e --timeout 600
  registry-admin tasks cancel 5f0c2d1e""")
def tasks_group() -> None:
    """List, show, cancel and wait for the tasks the server runs (publish, copy, delete, clean-up)."""


@tasks_group.command("list", short_help="List tasks, newest first.", epilog="""\b
Examples:
  registry-admin tasks list
  registry-admin tasks list --state waiting --state running --repo team/app
  registry-admin tasks list --type copy --limit 5 --output json""")
@click.option("--state", "states", multiple=True, type=click.Choice(TASK_STATES), help="Only tasks in this state "
              "(repeat for several).")
@click.option("--repo", "repo_name", metavar="NAME", help="Only tasks on repository NAME.")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only tasks of this type: publish, copy, delete_repository, orphan_cleanup, sync, "
                   "sync_preview, republish (repeatable).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Tasks to show.")
@OUTPUT_OPTION
@click.pass_context
def list_tasks(ctx: click.Context, states: tuple[str, ...], repo_name: str | None, types: tuple[str, ...],
               limit: int, output: str) -> None:
    """List tasks, newest first: ID, TYPE, STATE, REPOSITORY, USER, CREATED, FINISHED (UTC)."""
    client = ctx.obj.client()
    params: dict[str, Any] = {"limit": limit}
    if states:
        params["state"] = ",".join(states)
    if types:
        params["type"] = ",".join(types)
    if repo_name is not None:
        validate_name(repo_name)
        params["repository"] = repository_by_name(client, repo_name)["id"]
    tasks = client.get_json(f"{API}/tasks/", params=params)
    if output == "json":
        echo_json(tasks)
    elif not tasks:
        click.echo("No tasks match.")
    else:
        click.echo(tasks_table(tasks, repository_names(client)))


@tasks_group.command("show", short_help="Show a task: progress, result, error.", epilog="""\b
Example:
  registry-admin tasks show 5f0c2d1e --output json""")
@click.argument("task_id", metavar="ID")
@OUTPUT_OPTION
@click.pass_context
def show_task(ctx: click.Context, task_id: str, output: str) -> None:
    """Show task ID: state, progress per step, result or error, the task that spawned it and those it spawned."""
    client = ctx.obj.client()
    task = client.get_json(task_path(task_id))
    if output == "json":
        echo_json(task)
    else:
        click.echo(task_fields(task, repository_names(client)))


@tasks_group.command("cancel", short_help="Cancel a waiting or running task.", epilog="""\b
Example:
  registry-admin tasks cancel 5f0c2d1e""")
@click.argument("task_id", metavar="ID")
@click.pass_context
def cancel_task(ctx: click.Context, task_id: str) -> None:
    """Cancel task ID: a waiting task is canceled at once; a running one stops at its next safe point
    (where stopping leaves nothing half done). A task that has ended cannot be canceled."""
    client = ctx.obj.client()
    response = client.request("DELETE", task_path(task_id), expected=(200, 202, 409))
    if response.status_code == 409:
        task = client.get_json(task_path(task_id))
        raise AdminError(f"task {task_id} has already ended ({task.get('state')}); nothing to cancel")
    if response.status_code == 202:
        click.echo(f"Task {task_id}: cancel requested; it stops at its next safe point "
                   f"(registry-admin tasks wait {task_id} to follow it).")
    else:
        click.echo(f"Task {task_id}: canceled.")


@tasks_group.command("wait", short_help="Wait for a task, showing its progress.", epilog="""\b
Examples:
  registry-admin tasks wait 5f0c2d1e
  registry-admin tasks wait 5f0c2d1e --timeout 3600""")
@click.argument("task_id", metavar="ID")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True, metavar="SECONDS",
              help="Seconds to wait before giving up (the task goes on).")
@click.pass_context
def wait_task(ctx: click.Context, task_id: str, timeout: float) -> None:
    """Wait for task ID to end, with a progress bar on a terminal (a status line per change otherwise).

    Exits 0 when the task finished, 1 when it ended in error or was canceled,
    or is still running after --timeout.
    """
    client = ctx.obj.client()
    first = client.get_json(task_path(task_id))
    what = f"{first.get('task_type') or 'task'} task"
    if first.get("state") in ("error", "canceled"):
        raise AdminError(ended_message(first, what))
    task = first if first.get("state") == "finished" else wait_for_task(
        client, task_path(task_id), timeout, what=what, show_progress=True)
    result = key_values(task.get("result"))
    click.echo(f"Task {task_id} finished{'' if result == '-' else ': ' + result}.")
