"""Asking twice at once for the same work on a repository never spawns two pending tasks.

The workers are replaced by a recorder (tasks stay waiting, as they do while
the broker holds them), so every request sees the other's task pending.
"""
from __future__ import annotations

import sys
import threading

import pytest

from pulp_registry import content, repositories, tasks
from pulp_registry.db import utcnow

ROUNDS = 25
REPOS = "/pulp/api/v2/repositories/"


class RecordingCelery:
    """Stands for the broker: records what was sent, runs nothing."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def signature(self, name: str, kwargs: dict) -> "RecordingCelery._Signature":
        return RecordingCelery._Signature(self)

    class _Signature:
        def __init__(self, celery: "RecordingCelery") -> None:
            self.celery = celery

        def apply_async(self, task_id: str) -> None:
            with self.celery._lock:
                self.celery.sent.append(task_id)


@pytest.fixture
def broker(services):
    services.celery = RecordingCelery()
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield services.celery
    sys.setswitchinterval(previous)


def _at_once(count: int, ask) -> list:
    """Run ``ask(index)`` in ``count`` threads released together; return their answers."""
    start = threading.Barrier(count)
    answers: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            answers[index] = ask(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return answers


def _pending(services, task_type: str, repo_id: str) -> list[dict]:
    states = [state.value for state in tasks.PENDING_STATES[task_type]]
    return list(services.db.tasks.find({"task_type": task_type, "resources": tasks.repository_resource(repo_id),
                                        "state": {"$in": states}}))


@pytest.mark.parametrize("task_type", ["publish", "delete_repository"])
def test_twin_submits_from_threads_yield_one_pending_task(services, broker, task_type):
    for round_number in range(ROUNDS):
        repo = repositories.create_repository(services.db, f"twin/app{round_number}")
        resource = tasks.repository_resource(repo["_id"])

        answers = _at_once(4, lambda _index: tasks.submit(services, task_type, [resource], repo_id=repo["_id"]))

        pending = _pending(services, task_type, repo["_id"])
        assert len(pending) == 1, pending
        assert {answer["_id"] for answer in answers} == {pending[0]["_id"]}
    assert len(broker.sent) == ROUNDS  # one message per round: the twins were never sent


def test_twin_deletes_through_the_api_answer_one_task(app, auth, services, broker):
    for round_number in range(ROUNDS):
        repo = repositories.create_repository(services.db, f"twin/delete{round_number}")

        def delete(_index):
            response = app.test_client().delete(f"{REPOS}{repo['_id']}/", headers=auth)
            assert response.status_code == 202, response.get_data(as_text=True)
            return [task["task_id"] for task in response.get_json()["spawned_tasks"]]

        answers = _at_once(3, delete)

        pending = _pending(services, "delete_repository", repo["_id"])
        assert len(pending) == 1
        assert answers == [[pending[0]["_id"]]] * 3


def test_twin_publishes_from_the_api_and_from_pushes_answer_one_task(app, auth, services, broker):
    for round_number in range(ROUNDS):
        repo = repositories.create_repository(services.db, f"twin/publish{round_number}")

        def publish_action(_index):
            response = app.test_client().post(f"{REPOS}{repo['_id']}/actions/publish/", json={}, headers=auth)
            assert response.status_code == 202, response.get_data(as_text=True)
            return response.get_json()["spawned_tasks"][0]["task_id"]

        def after_push(_index):
            return content.request_publish(services, repo["_id"])["_id"]

        answers = _at_once(4, lambda index: (publish_action if index % 2 else after_push)(index))

        pending = _pending(services, "publish", repo["_id"])
        assert len(pending) == 1
        assert set(answers) == {pending[0]["_id"]}


def _end(services, task_id: str, state: str) -> None:
    services.db.tasks.update_one({"_id": task_id}, {"$set": {"state": state, "finished": utcnow()}})


@pytest.mark.parametrize("final_state", ["finished", "error", "canceled"])
def test_twin_once_the_task_ended_the_same_work_gets_a_new_task(services, broker, final_state):
    repo = repositories.create_repository(services.db, "my/app")
    resource = tasks.repository_resource(repo["_id"])
    first = tasks.submit(services, "delete_repository", [resource], repo_id=repo["_id"])
    _end(services, first["_id"], final_state)

    second = tasks.submit(services, "delete_repository", [resource], repo_id=repo["_id"])

    assert second["_id"] != first["_id"] and second["state"] == "waiting"
    assert tasks.submit(services, "delete_repository", [resource], repo_id=repo["_id"])["_id"] == second["_id"]
    assert broker.sent == [first["_id"], second["_id"]]


def test_twin_a_running_publish_does_not_answer_a_new_publish_but_a_running_delete_does(services, broker):
    repo = repositories.create_repository(services.db, "my/app")
    resource = tasks.repository_resource(repo["_id"])
    publish = tasks.submit(services, "publish", [resource], repo_id=repo["_id"])
    delete = tasks.submit(services, "delete_repository", [resource], repo_id=repo["_id"])
    for task in (publish, delete):
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"state": "running", "started": utcnow()}})

    # The running publish may have read the repository before the change: a new one is needed.
    assert tasks.submit(services, "publish", [resource], repo_id=repo["_id"])["_id"] != publish["_id"]
    assert tasks.submit(services, "delete_repository", [resource], repo_id=repo["_id"])["_id"] == delete["_id"]


def test_twin_a_task_the_broker_refused_answers_no_later_request(services):
    class DownBroker:
        def signature(self, name, kwargs):
            return self

        def apply_async(self, task_id):
            raise ConnectionError("broker unreachable")

    repo = repositories.create_repository(services.db, "my/app")
    resource = tasks.repository_resource(repo["_id"])
    services.celery = DownBroker()
    with pytest.raises(ConnectionError):
        tasks.submit(services, "publish", [resource], repo_id=repo["_id"])
    [failed] = list(services.db.tasks.find({"task_type": "publish"}))
    assert failed["state"] == "error" and "pending_key" not in failed

    services.celery = RecordingCelery()
    retried = tasks.submit(services, "publish", [resource], repo_id=repo["_id"])
    assert retried["_id"] != failed["_id"] and services.celery.sent == [retried["_id"]]
