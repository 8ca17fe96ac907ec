"""``pulp-registry republish --all``: upgrade the published tree and publish every repository again, as a task.

The work is the ``republish`` task (``pulp_registry.republish``), run by a
worker; this command submits it, prints its id and, with ``--wait``, follows
it and the publish tasks it submits until they end.
"""
from __future__ import annotations

import time
from typing import Any

import click

from pulp_registry.cli import PROG, ServerContext, config_option, fail

#: Seconds between two looks at the tasks while ``--wait`` follows them.
POLL_SECONDS = 1.0


def _services(obj: ServerContext, config: str | None) -> Any:
    settings = obj.settings(config)
    if settings.mongo_url.startswith("mongomock://"):
        fail(f"republish: mongo_url is {settings.mongo_url!r}, an in-memory database of this command alone; "
             f"set mongo_url (or PULP_REGISTRY_MONGO_URL) to the registry's MongoDB")
    return obj.build_services(settings)


def _wait(services: Any, task_id: str, timeout: float) -> dict[str, Any]:
    """Follow the task, then its publish tasks, printing progress; the republish task's last document."""
    from pulp_registry import tasks

    deadline = time.monotonic() + timeout
    shown = None
    while True:
        task = tasks.get_task(services.db, task_id) or {}
        spawned = tasks.spawned_tasks(services.db, task_id)
        ended = sum(child.get("state") in tasks.FINAL for child in spawned)
        line = f"{task.get('state')}: {ended}/{len(spawned)} publish tasks ended"
        if line != shown:
            click.echo(line)
            shown = line
        if task.get("state") in tasks.FINAL and ended == len(spawned):
            return task
        if time.monotonic() > deadline:
            fail(f"republish: still running after {timeout:g} seconds; follow task {task_id} with "
                 f"`registry-admin tasks show {task_id}`")
        time.sleep(POLL_SECONDS)


@click.command("republish", short_help="Upgrade the published tree and publish every repository again.")
@click.option("--all", "everything", is_flag=True, help="Every published repository (required).")
@click.option("--wait", is_flag=True, help="Follow the task and its publish tasks until they end.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(min=0),
              help="With --wait: seconds to follow the tasks before giving up (they go on).")
@config_option
@click.pass_obj
def republish_command(obj: ServerContext, everything: bool, wait: bool, timeout: float,
                      config: str | None) -> None:
    """Submit the `republish` task: it upgrades the published tree to this version's
    format (journal, catalog, FORMAT; Crane keeps serving what was published) and
    then submits one publish task per published repository. Run it once after
    upgrading pulp-registry when publishes fail with "run `pulp-registry republish --all`".
    Prints the task id; a worker must be running.

    \b
    Example:
      pulp-registry republish --all --wait
    """
    import pymongo.errors

    from pulp_registry import tasks
    from pulp_registry.maintenance import ReadOnlyMode
    from pulp_registry.republish import PUBLISHED_TREE_RESOURCE

    if not everything:
        fail("republish: give --all: every published repository is published again (there is no "
             "republish of single repositories)", status=2)
    services = _services(obj, config)
    try:
        task = tasks.submit(services, "republish", [PUBLISHED_TREE_RESOURCE], user=PROG)
    except ReadOnlyMode as exc:
        fail(f"republish: {exc}")
    except pymongo.errors.PyMongoError as exc:
        fail(f"republish: {exc}")
    click.echo(f"republish task {task['_id']}")
    if not wait:
        return
    task = _wait(services, task["_id"], timeout)
    if task.get("state") != tasks.TaskState.FINISHED.value:
        error = (task.get("error") or {}).get("description")
        fail(f"republish: task {task['_id']} ended {task.get('state')}: {error}")
    failed = [child for child in tasks.spawned_tasks(services.db, task["_id"])
              if child.get("state") != tasks.TaskState.FINISHED.value]
    if failed:
        fail(f"republish: {len(failed)} publish tasks did not finish, the first {failed[0]['_id']} "
             f"({failed[0].get('state')})")
    click.echo(f"republished: {task.get('result')}")


COMMANDS: list[click.Command] = [republish_command]
