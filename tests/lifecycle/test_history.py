"""Repository history: one document per event (push, copy, remove, publish, update...), shown newest first."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from pulp_registry import history
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.lifecycle.helpers import COPY, REPOS, run_waiting_tasks
from tests.registry.conftest import Pusher


def events(client, auth, repo_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{REPOS}{repo_id}/history/", query_string=params, headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def lived(client, auth, services) -> dict[str, Any]:
    """``prod/app``: created by a copy from ``dev/app``, then pushed to, a tag removed, its description updated."""
    pusher = Pusher(client, auth)
    pusher.image("dev/app", seed=b"1", tag="1.0")
    copied = client.post(COPY, json={"source": "dev/app", "target": "prod/app", "tags": ["1.0"]}, headers=auth)
    assert copied.status_code == 202
    run_waiting_tasks(services)
    copy_task = copied.get_json()["spawned_tasks"][0]["task_id"]
    pusher.image("prod/app", seed=b"2", tag="extra")
    removed = client.post(f"{REPOS}prod-app/actions/remove/", json={"tags": ["extra"]}, headers=auth)
    assert removed.status_code == 202, removed.get_json()
    run_waiting_tasks(services)
    updated = client.put(f"{REPOS}prod-app/", json={"delta": {"description": "production",
                                                              "notes": {"owner": "secret-value"}}}, headers=auth)
    assert updated.status_code == 200
    return {"copy_task": copy_task}


def test_events_are_listed_newest_first_with_who_and_which_task(client, auth, services, lived):
    shown = events(client, auth, "prod-app")

    assert [event["action"] for event in shown] == [
        "update", "publish", "remove", "publish", "push", "publish", "copy", "create"]
    assert all(event["user"] == "admin" for event in shown if event["action"] not in ("push", "remove")), shown
    # Compared as times: ISO 8601 text leaves out a fraction of zero, so it does not sort as text.
    times = [datetime.fromisoformat(event["time"].replace("Z", "+00:00")) for event in shown]
    assert times == sorted(times, reverse=True)
    copy, = (event for event in shown if event["action"] == "copy")
    assert copy["task_id"] == lived["copy_task"]
    assert copy["details"]["source"] == "dev/app" and copy["details"]["tags"] == ["1.0"]
    for publish in (event for event in shown if event["action"] == "publish"):
        task = services.db.tasks.find_one({"_id": publish["task_id"]})
        assert task["task_type"] == "publish" and task["state"] == "finished"
        assert publish["details"]["version"]
    remove, = (event for event in shown if event["action"] == "remove")
    assert remove["details"]["tags"] == ["extra"]
    push, = (event for event in shown if event["action"] == "push")
    assert push["details"]["reference"] == "extra"


def test_pushes_and_removals_through_the_api_record_the_caller(client, auth, lived):
    """Recorded in the request (no task): the user is the API caller (``history.record``'s default)."""
    shown = events(client, auth, "prod-app")
    assert {event["action"]: event["user"] for event in shown if event["action"] in ("push", "remove")} == {
        "push": "admin", "remove": "admin"}


def test_each_event_is_a_document_of_its_own_and_an_update_names_fields_never_note_values(
        client, auth, services, lived):
    shown = events(client, auth, "prod-app")
    assert services.db.repo_history.count_documents({"repo_id": "prod-app"}) == len(shown)
    assert "history" not in services.db.repositories.find_one({"_id": "prod-app"})
    update = shown[0]
    assert update["details"] == {"fields": ["description", "notes"]}
    stored = services.db.repo_history.find_one({"action": "update", "repo_id": "prod-app"})
    assert "secret-value" not in json.dumps(stored, default=str)


def test_history_pages_with_limit_and_before_and_filters_by_action(client, auth, lived):
    everything = events(client, auth, "prod-app")
    first = events(client, auth, "prod-app", limit=3)
    rest = events(client, auth, "prod-app", limit=100, before=first[-1]["id"])
    assert first + rest == everything
    assert [event["action"] for event in events(client, auth, "prod-app", action="publish")] == ["publish"] * 3


@pytest.mark.parametrize("params, field", [({"limit": "0"}, "limit"), ({"limit": "many"}, "limit"),
                                           ({"action": "explode"}, "action")])
def test_bad_history_queries_are_400_naming_the_parameter(client, auth, lived, params, field):
    response = client.get(f"{REPOS}prod-app/history/", query_string=params, headers=auth)
    assert response.status_code == 400 and response.get_json()["field"] == field


def test_history_of_an_unknown_repository_is_404_and_needs_read(client, auth, services, lived):
    assert client.get(f"{REPOS}nope/history/", headers=auth).status_code == 404
    create_user(services.db, "outsider", "lifecycle-pw-42", rounds=4)
    assert client.get(f"{REPOS}prod-app/history/", headers=basic_auth("outsider", "lifecycle-pw-42")).status_code == 403


def test_record_keeps_the_task_and_its_user(services):
    from pulp_registry import tasks

    task = tasks.create_task(services.db, "copy", [], {}, user="alice")
    token = tasks.CURRENT_TASK.set(task)
    try:
        history.record(services.db, "some-repo", "copy", {"tags": ["v1"]})
    finally:
        tasks.CURRENT_TASK.reset(token)
    [event] = history.list_history(services.db, "some-repo")
    assert (event["user"], event["task_id"], event["details"]) == ("alice", task["_id"], {"tags": ["v1"]})
