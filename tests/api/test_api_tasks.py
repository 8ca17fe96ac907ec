"""``/pulp/api/v2/tasks/``: list with filters and pages, show with spawned tasks, cancel."""
from __future__ import annotations

import pytest

from pulp_registry import tasks
from datetime import timedelta

from pulp_registry.db import utcnow
from pulp_registry.tasks import TaskNotCancelable, cancel

TASKS = "/pulp/api/v2/tasks/"


def _task(services, state: str = "waiting", repo_id: str = "my-app", task_type: str = "publish") -> dict:
    """A task document in ``state``, written without sending it to the workers."""
    task = tasks.create_task(services.db, task_type, [tasks.repository_resource(repo_id)], {"repo_id": repo_id})
    if state != "waiting":
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"state": state, "started": utcnow()}})
    return task


def test_list_shows_every_task_in_the_pulp_form(client, auth, services):
    waiting = _task(services)
    response = client.get(TASKS, headers=auth)
    assert response.status_code == 200
    [shown] = response.get_json()
    assert shown["task_id"] == waiting["_id"]
    assert shown["_href"] == f"/pulp/api/v2/tasks/{waiting['_id']}/"
    assert shown["state"] == "waiting"
    assert shown["task_type"] == "publish"
    assert shown["resources"] == ["repository:my-app"]
    assert shown["created"].endswith("Z")
    assert shown["start_time"] is None and shown["finish_time"] is None


def test_list_filters_by_one_or_more_states(client, auth, services):
    waiting, running, finished = _task(services), _task(services, "running"), _task(services, "finished")
    _task(services, "error")

    def ids(query: str) -> set[str]:
        response = client.get(TASKS, query_string={"state": query}, headers=auth)
        assert response.status_code == 200
        return {task["task_id"] for task in response.get_json()}

    assert ids("waiting") == {waiting["_id"]}
    assert ids("waiting,running") == {waiting["_id"], running["_id"]}
    assert ids("finished, canceled") == {finished["_id"]}
    assert len(ids("")) == 4


def test_an_unknown_state_answers_400_naming_state(client, auth, services):
    response = client.get(TASKS, query_string={"state": "waiting,sleeping"}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == "state"
    assert "sleeping" in response.get_json()["message"]


def test_show_a_task_and_an_unknown_one(client, auth, services):
    task = _task(services, "running")
    response = client.get(f"{TASKS}{task['_id']}/", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["state"] == "running"
    missing = client.get(f"{TASKS}no-such-task/", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"


def test_a_spawned_publish_task_is_listed_and_finished(client, auth, services, create_repo):
    create_repo("my/app")
    report = client.post("/pulp/api/v2/repositories/my-app/actions/publish/", headers=auth).get_json()
    [spawned] = report["spawned_tasks"]
    listed = client.get(TASKS, query_string={"state": "finished"}, headers=auth).get_json()
    assert [task["task_id"] for task in listed] == [spawned["task_id"]]
    shown = client.get(spawned["_href"], headers=auth).get_json()
    assert shown["finish_time"] and shown["start_time"] and shown["worker_name"]
    assert shown["error"] is None


def test_cancel_a_waiting_task(client, auth, services):
    task = _task(services)
    response = client.delete(f"{TASKS}{task['_id']}/", headers=auth)
    assert response.status_code == 200
    canceled = response.get_json()
    assert canceled["state"] == "canceled"
    assert canceled["finish_time"]
    assert client.get(f"{TASKS}{task['_id']}/", headers=auth).get_json()["state"] == "canceled"


def test_cancel_a_running_task_asks_it_to_stop(client, auth, services):
    task = _task(services, "running")
    response = client.delete(f"{TASKS}{task['_id']}/", headers=auth)
    assert response.status_code == 202
    assert response.get_json()["state"] == "running"
    assert response.get_json()["cancel_requested"] is True


@pytest.mark.parametrize("state", ["finished", "error", "canceled"])
def test_a_task_that_is_over_cannot_be_canceled(client, auth, services, state):
    task = _task(services, state)
    response = client.delete(f"{TASKS}{task['_id']}/", headers=auth)
    assert response.status_code == 409
    assert state in response.get_json()["message"]
    assert services.db.tasks.find_one({"_id": task["_id"]})["state"] == state


def test_cancel_an_unknown_task_answers_404(client, auth):
    assert client.delete(f"{TASKS}no-such-task/", headers=auth).status_code == 404


def test_cancel_is_a_plain_function(services):
    task = _task(services)
    assert cancel(services, task["_id"])["state"] == "canceled"
    with pytest.raises(TaskNotCancelable):
        cancel(services, task["_id"])
    assert cancel(services, "no-such-task") is None


def test_list_filters_by_type_repository_and_time(client, auth, services):
    publish_a = _task(services, repo_id="a")
    copy_a = _task(services, repo_id="a", task_type="copy")
    publish_b = _task(services, repo_id="b")
    old = _task(services, "finished", repo_id="b")
    services.db.tasks.update_one({"_id": old["_id"]}, {"$set": {"created": utcnow() - timedelta(days=2)}})

    def ids(**query) -> list[str]:
        response = client.get(TASKS, query_string=query, headers=auth)
        assert response.status_code == 200, response.get_json()
        return [task["task_id"] for task in response.get_json()]

    assert ids(type="copy") == [copy_a["_id"]]
    assert set(ids(repository="a")) == {publish_a["_id"], copy_a["_id"]}
    assert set(ids(repository="b", type="publish")) == {publish_b["_id"], old["_id"]}
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    assert old["_id"] not in ids(since=yesterday)
    assert ids(until=yesterday) == [old["_id"]]
    for bad in ({"type": "sleep"}, {"since": "yesterday"}, {"limit": "0"}, {"limit": "x"}):
        response = client.get(TASKS, query_string=bad, headers=auth)
        assert response.status_code == 400
        assert response.get_json()["field"] == next(iter(bad))


def test_pages_newest_first_follow_the_link_to_the_end(client, auth, services):
    created = [_task(services, repo_id=f"r{number}")["_id"] for number in range(7)]
    seen, url = [], f"{TASKS}?limit=3"
    while url:
        response = client.get(url, headers=auth)
        assert response.status_code == 200
        seen += [task["task_id"] for task in response.get_json()]
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert seen == list(reversed(created))


def test_show_names_the_tasks_a_task_spawned(client, auth, services):
    parent = _task(services, "running", task_type="copy")
    token = tasks.CURRENT_TASK.set(parent)
    try:
        child = tasks.create_task(services.db, "publish", [tasks.repository_resource("my-app")], {})
    finally:
        tasks.CURRENT_TASK.reset(token)
    shown = client.get(f"{TASKS}{parent['_id']}/", headers=auth).get_json()
    assert [spawned["task_id"] for spawned in shown["spawned_tasks"]] == [child["_id"]]
    assert client.get(f"{TASKS}{child['_id']}/", headers=auth).get_json()["parent"] == parent["_id"]


def test_every_task_filter_is_served_by_an_index_in_listing_order():
    """MongoDB cannot run here to show a query plan: the index list is what the server would use."""
    from pulp_registry.db import INDEXES

    keys = [list(index.document["key"].items()) for index in INDEXES["tasks"]]
    assert [("queued", -1), ("_id", -1)] in keys  # no filter: newest first
    for field in ("state", "task_type", "resources"):
        assert [(field, 1), ("queued", -1)] in keys, field
    assert [("parent", 1)] in keys  # spawned tasks
    assert [("finished", 1)] in keys  # the purge
