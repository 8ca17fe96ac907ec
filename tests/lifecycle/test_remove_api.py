"""``POST /repositories/<id>/actions/remove/``: tags and manifests removed, checked first, then published."""
from __future__ import annotations

from typing import Any

import pytest

from pulp_registry import repositories
from pulp_registry.permissions import DELETE, READ, grant, repository_resource
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.crane.conftest import error_code
from tests.crane.content import Publisher
from tests.lifecycle.helpers import REPOS, crane_on, held, push_referrer, run_waiting_tasks

REMOVE = f"{REPOS}my-app/actions/remove/"


@pytest.fixture
def repo(services) -> dict[str, Any]:
    publisher = Publisher(services)
    repo = publisher.repository("my/app")
    images = {tag: publisher.image(repo, tag) for tag in ("keep", "old", "older")}
    signature = push_referrer(services, repo, images["older"], b"signature")
    publisher.publish(repo)
    return {"repo": repo, "images": images, "signature": signature}


def test_removing_tags_and_a_manifest_answers_what_went_and_publishes(client, auth, services, repo):
    crane = crane_on(services)
    older = repo["images"]["older"].digest
    assert crane.get("/v2/my/app/manifests/old").status_code == 200

    response = client.post(REMOVE, json={"tags": ["old"], "digests": [older]}, headers=auth)

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert sorted(body["result"]["tags"]) == ["old", "older"]
    assert body["result"]["manifests"] == [older]
    assert body["result"]["referrers"] == [repo["signature"]]
    [spawned] = body["spawned_tasks"]
    run_waiting_tasks(services)
    assert services.db.tasks.find_one({"_id": spawned["task_id"]})["task_type"] == "publish"
    assert held(services, "my-app")["tags"] == {"keep": repo["images"]["keep"].digest}
    crane.tick()
    assert error_code(crane.get("/v2/my/app/manifests/old")) == "MANIFEST_UNKNOWN"
    assert crane.get("/v2/my/app/manifests/keep").status_code == 200


@pytest.mark.parametrize("body, status, named", [
    ({"tags": ["old", "no-such-tag"]}, 404, "no-such-tag"),
    ({"digests": ["sha256:" + "1" * 64]}, 404, "sha256:" + "1" * 64),
    ({}, 400, "tags"),
    ({"tags": "old"}, 400, "tags"),
    ({"tags": ["old"], "force": True}, 400, "force"),
])
def test_a_bad_removal_is_refused_naming_what_is_wrong_and_removes_nothing(client, auth, services, repo,
                                                                           body, status, named):
    before = held(services, "my-app")
    response = client.post(REMOVE, json=body, headers=auth)
    assert response.status_code == status, response.get_json()
    assert named in response.get_json()["message"]
    assert held(services, "my-app") == before


def test_removal_needs_delete_on_the_repository_and_a_repository_being_deleted_refuses_it(client, auth,
                                                                                          services, repo):
    for login in ("reader", "cleaner"):
        create_user(services.db, login, "lifecycle-pw-42", rounds=4)
    grant(services.db, "user", "reader", repository_resource("my-app"), [READ])
    grant(services.db, "user", "cleaner", repository_resource("my-app"), [DELETE])
    body = {"tags": ["old"]}
    assert client.post(REMOVE, json=body, headers=basic_auth("reader", "lifecycle-pw-42")).status_code == 403
    assert client.post(REMOVE, json=body, headers=basic_auth("cleaner", "lifecycle-pw-42")).status_code == 202

    repositories.mark_deleting(services.db, "my-app")
    response = client.post(REMOVE, json={"tags": ["older"]}, headers=auth)
    assert response.status_code == 409 and "being deleted" in response.get_json()["message"]
