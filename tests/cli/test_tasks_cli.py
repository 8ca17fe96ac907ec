"""``registry-admin tasks ...``: list, show, cancel and wait, against the real tasks API."""
from __future__ import annotations

import threading

from pulp_registry import tasks
from pulp_registry.db import utcnow
from tests.cli.conftest import json_output, one_error_line
from tests.images import build_oci_layout


def make_task(services, state: str = "waiting", repo_id: str = "team-app", task_type: str = "publish",
              **fields) -> str:
    """A task document in ``state``, written without sending it to a worker."""
    task = tasks.create_task(services.db, task_type, [tasks.repository_resource(repo_id)], {"repo_id": repo_id})
    if state != "waiting" or fields:
        changes = {"state": state, **fields}
        if state != "waiting":
            changes.setdefault("started", utcnow())
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": changes})
    return task["_id"]


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_tasks_list_shows_the_publish_of_a_push_newest_first(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    assert run_cli("push", "team/app:v1", "--archive", str(layout)).exit_code == 0
    assert run_cli("push", "team/app:v2", "--archive", str(layout)).exit_code == 0
    listed = run_cli("tasks", "list")
    assert listed.exit_code == 0, listed.output
    table = rows(listed.stdout)
    assert table[0] == ["ID", "TYPE", "STATE", "REPOSITORY", "USER", "CREATED", "FINISHED"]
    publishes = [row for row in table[1:] if row[1] == "publish"]
    assert len(publishes) == 2
    assert all(row[2] == "finished" and row[3] == "team/app" for row in publishes)
    api_order = [task["task_id"] for task in server.api("/pulp/api/v2/tasks/")]
    assert [row[0] for row in table[1:]] == api_order, "newest first, as the server orders them"


def test_tasks_list_filters_by_state_type_and_repository_name(run_cli, server):
    run_cli("repo", "create", "team/app")
    run_cli("repo", "create", "tools/db")
    waiting = make_task(server.services, "waiting", "team-app")
    running = make_task(server.services, "running", "tools-db", "copy")
    make_task(server.services, "finished", "team-app")

    def ids(*args: str) -> set[str]:
        return {task["task_id"] for task in json_output(run_cli("tasks", "list", *args, "-o", "json"))}

    assert ids("--state", "waiting") == {waiting}
    assert ids("--state", "waiting", "--state", "running") == {waiting, running}
    assert ids("--type", "copy") == {running}
    assert ids("--repo", "tools/db") == {running}
    assert len(ids("--limit", "1")) == 1
    assert "no repository named 'no/such'" in one_error_line(run_cli("tasks", "list", "--repo", "no/such"))


def test_tasks_show_gives_progress_result_and_spawned_tasks(run_cli, server):
    parent = make_task(server.services, "running", task_type="copy",
                       progress={"copy": {"done": 2, "total": 5, "description": "Copying manifests"}})
    child = make_task(server.services, "waiting", parent=parent)
    shown = run_cli("tasks", "show", parent)
    assert shown.exit_code == 0, shown.output
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in shown.stdout.splitlines()}
    assert fields["Type"] == "copy" and fields["State"] == "running"
    assert fields["Progress"] == "copy: 2/5  Copying manifests"
    assert child in fields["Spawned"] and "publish" in fields["Spawned"]
    assert json_output(run_cli("tasks", "show", child, "-o", "json"))["parent"] == parent


def test_tasks_show_unknown_is_one_line(run_cli, server):
    assert "does not exist" in one_error_line(run_cli("tasks", "show", "no-such-task"))


def test_tasks_cancel_waiting_running_and_ended(run_cli, server):
    waiting = make_task(server.services, "waiting")
    result = run_cli("tasks", "cancel", waiting)
    assert result.exit_code == 0, result.output
    assert "canceled" in result.stdout
    assert server.api(f"/pulp/api/v2/tasks/{waiting}/")["state"] == "canceled"

    running = make_task(server.services, "running")
    result = run_cli("tasks", "cancel", running)
    assert result.exit_code == 0, result.output
    assert "cancel requested; it stops at its next safe point" in result.stdout

    ended = make_task(server.services, "finished")
    result = run_cli("tasks", "cancel", ended)
    assert result.exit_code == 1
    assert "already ended (finished)" in one_error_line(result)


def test_tasks_wait_follows_progress_until_the_task_finishes(run_cli, server):
    task_id = make_task(server.services, "running", task_type="copy",
                        progress={"copy": {"done": 1, "total": 2}})

    def finish_later() -> None:
        server.services.db.tasks.update_one({"_id": task_id}, {"$set": {
            "state": "finished", "finished": utcnow(), "progress": {"copy": {"done": 2, "total": 2}},
            "result": {"tags": ["1.2"]}}})

    timer = threading.Timer(1.0, finish_later)
    timer.start()
    try:
        result = run_cli("tasks", "wait", task_id, "--timeout", "30")
    finally:
        timer.join()
    assert result.exit_code == 0, result.output
    # Not a terminal: one status line per change instead of a bar.
    assert f"copy task {task_id}: running (copy 1/2)" in result.stderr
    assert f"copy task {task_id}: finished (copy 2/2)" in result.stderr
    assert f"Task {task_id} finished: tags=1.2." in result.stdout


def test_tasks_wait_exits_non_zero_for_a_failed_or_canceled_task(run_cli, server):
    failed = make_task(server.services, "error", error={"code": "PRG0000", "description": "disk full"})
    line = one_error_line(run_cli("tasks", "wait", failed))
    assert "ended error: disk full" in line
    canceled = make_task(server.services, "canceled")
    result = run_cli("tasks", "wait", canceled)
    assert result.exit_code == 1 and "ended canceled" in one_error_line(result)


def test_tasks_wait_gives_up_after_the_timeout(run_cli, server):
    task_id = make_task(server.services, "running")
    line = one_error_line(run_cli("tasks", "wait", task_id, "--timeout", "1"))
    assert "still running after 1 s" in line
