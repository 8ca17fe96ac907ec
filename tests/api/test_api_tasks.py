"""``/pulp/api/v2/tasks/``: list with a state filter, show, cancel a waiting task."""
from __future__ import annotations

import pytest

from pulp_registry import tasks
from pulp_registry.api.tasks import TaskNotCancelable, cancel_task
from pulp_registry.db import utcnow

TASKS = "/pulp/api/v2/tasks/"


def _task(services, state: str = "waiting", repo_id: str = "my-app") -> dict:
    """A task document in ``state``, written without sending it to the workers."""
    task = tasks.create_task(services.db, "publish", [tasks.repository_resource(repo_id)], {"repo_id": repo_id})
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


@pytest.mark.parametrize("state", ["running", "finished", "error", "canceled"])
def test_a_task_that_is_running_or_over_cannot_be_canceled(client, auth, services, state):
    task = _task(services, state)
    response = client.delete(f"{TASKS}{task['_id']}/", headers=auth)
    assert response.status_code == 409
    assert state in response.get_json()["message"]
    assert services.db.tasks.find_one({"_id": task["_id"]})["state"] == state


def test_cancel_an_unknown_task_answers_404(client, auth):
    assert client.delete(f"{TASKS}no-such-task/", headers=auth).status_code == 404


def test_cancel_task_is_a_plain_function(services):
    task = _task(services)
    assert cancel_task(services, task["_id"])["state"] == "canceled"
    with pytest.raises(TaskNotCancelable):
        cancel_task(services, task["_id"])
    assert cancel_task(services, "no-such-task") is None
