"""Deleting a repository: Crane forgets it at once, removal goes top-down, and an interrupted one is finished."""
from __future__ import annotations

import json
from typing import Any

import pytest

from pulp_registry import content, history, repositories
from pulp_registry.publish import publish_repository
from pulp_registry.registry_errors import Denied
from tests.crane.conftest import error_code
from tests.crane.content import Publisher
from tests.lifecycle.helpers import REPOS, crane_on, held, push_referrer


class Crash(Exception):
    """The worker died here."""


@pytest.fixture
def published(services) -> dict[str, Any]:
    """``my/app`` with an image, an index over two children and a signature, published; an upload under way."""
    publisher = Publisher(services)
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    amd64 = publisher.image(repo, None, architecture="amd64")
    arm64 = publisher.image(repo, None, architecture="arm64")
    publisher.index(repo, "multi", [(amd64, "amd64"), (arm64, "arm64")])
    push_referrer(services, repo, image, b"signature")
    content.start_upload(services, "my/app", repo["_id"])
    publish_repository(services, repo["_id"])
    return repo


def assert_no_broken_reference(services: Any, repo_id: str) -> None:
    """Every tag names a manifest the repository holds, and every held manifest's children and blobs are held."""
    holds = held(services, repo_id)
    assert set(holds["tags"].values()) <= holds["manifests"]
    for manifest in services.db.manifests.find({"_id": {"$in": list(holds["manifests"])}}):
        assert {child["digest"] for child in manifest.get("children") or []} <= holds["manifests"]
        assert set(manifest.get("blob_digests") or []) <= holds["blobs"]


def assert_gone(services: Any, repo_id: str) -> None:
    assert repositories.get_repository(services.db, repo_id) is None
    for collection in ("tags", "repo_manifests", "repo_blobs", "uploads", "repo_history"):
        assert services.db.database[collection].count_documents({"repo_id": repo_id}) == 0, collection


def test_delete_through_the_api_makes_crane_answer_name_unknown(client, auth, services, published):
    crane = crane_on(services)
    assert crane.get("/v2/my/app/tags/list").status_code == 200

    response = client.delete(f"{REPOS}my-app/", headers=auth)

    assert response.status_code == 202
    task = client.get(response.get_json()["spawned_tasks"][0]["_href"], headers=auth).get_json()
    assert task["state"] == "finished", task
    crane.tick()
    gone = crane.get("/v2/my/app/tags/list")
    assert gone.status_code == 404 and error_code(gone) == "NAME_UNKNOWN"
    assert client.get(f"{REPOS}my-app/", headers=auth).status_code == 404
    assert_gone(services, "my-app")


@pytest.mark.parametrize("crash_after", [step for step, _ in repositories.DELETE_STEPS])
def test_a_removal_interrupted_after_any_step_leaves_no_broken_reference_and_running_it_again_finishes_it(
        monkeypatch, client, auth, services, published, crash_after):
    crane = crane_on(services)
    assert crane.get("/v2/my/app/manifests/latest").status_code == 200

    def crashing(step_function):
        def run(*args: Any) -> Any:
            step_function(*args)
            raise Crash(f"worker died after {crash_after}")
        return run

    steps = tuple((step, crashing(function) if step == crash_after else function)
                  for step, function in repositories.DELETE_STEPS)
    monkeypatch.setattr(repositories, "DELETE_STEPS", steps)
    with pytest.raises(Crash):
        repositories.delete_repository(services, "my-app")

    # Half-way: still listed (as deleting), never broken, gone from Crane since the first step.
    assert_no_broken_reference(services, "my-app")
    shown = client.get(f"{REPOS}my-app/", headers=auth).get_json()
    assert shown["deleting"] is True
    assert [repo["deleting"] for repo in client.get(REPOS, headers=auth).get_json()] == [True]
    crane.tick()
    assert error_code(crane.get("/v2/my/app/tags/list")) == "NAME_UNKNOWN"
    # A late publish does not bring it back; a push is refused.
    assert "skipped" in publish_repository(services, "my-app")
    crane.tick()
    assert error_code(crane.get("/v2/my/app/manifests/latest")) == "NAME_UNKNOWN"
    with pytest.raises(Denied, match="being deleted"):
        content.ensure_repository(services.db, "my/app")

    monkeypatch.undo()
    result = repositories.delete_repository(services, "my-app")

    assert result["name"] == "my/app"
    assert_gone(services, "my-app")
    crane.tick()
    assert error_code(crane.get("/v2/my/app/tags/list")) == "NAME_UNKNOWN"
    with pytest.raises(repositories.RepositoryNotFound):
        repositories.delete_repository(services, "my-app")


def test_a_failed_delete_task_is_finished_by_deleting_again_through_the_api(monkeypatch, client, auth, services,
                                                                            published):
    def crash(services: Any, repo: dict[str, Any]) -> None:
        raise Crash("storage unavailable")

    steps = repositories.DELETE_STEPS
    monkeypatch.setattr(repositories, "DELETE_STEPS", steps[:2] + (("manifests", crash),) + steps[3:])
    first = client.delete(f"{REPOS}my-app/", headers=auth).get_json()
    failed = client.get(first["spawned_tasks"][0]["_href"], headers=auth).get_json()
    assert failed["state"] == "error" and "storage unavailable" in failed["error"]["description"]
    assert client.get(f"{REPOS}my-app/", headers=auth).get_json()["deleting"] is True

    monkeypatch.undo()
    again = client.delete(f"{REPOS}my-app/", headers=auth)

    assert again.status_code == 202
    task = client.get(again.get_json()["spawned_tasks"][0]["_href"], headers=auth).get_json()
    assert task["task_id"] != failed["task_id"] and task["state"] == "finished"
    assert_gone(services, "my-app")


def test_a_push_to_a_repository_being_deleted_gets_a_registry_error(client, auth, services, published):
    repositories.mark_deleting(services.db, "my-app")
    blob = b"new layer"
    response = client.post("/v2/my/app/blobs/uploads/", headers=auth)
    if response.status_code == 202:  # the session may open; the blob is refused when it lands
        digest = content.oci.compute_digest(blob)
        response = client.put(f"{response.headers['Location']}?digest={digest}", data=blob,
                              headers={**auth, "Content-Type": "application/octet-stream"})
    assert response.status_code == 403
    assert json.loads(response.data)["errors"][0]["code"] == "DENIED"
    assert "being deleted" in json.loads(response.data)["errors"][0]["message"]


def test_the_repository_document_goes_last_and_its_history_with_it(monkeypatch, services, published):
    history.record(services.db, "my-app", "update", {"fields": ["description"]})
    order: list[str] = []

    def recorded(step: str, function: Any) -> Any:
        def run(services: Any, repo: dict[str, Any]) -> Any:
            assert repositories.get_repository(services.db, "my-app")["deleting"]
            order.append(step)
            return function(services, repo)
        return run

    monkeypatch.setattr(repositories, "DELETE_STEPS",
                        tuple((step, recorded(step, function)) for step, function in repositories.DELETE_STEPS))
    repositories.delete_repository(services, "my-app")

    assert order == ["unpublish", "tags", "manifests", "blobs", "uploads", "history"]
    assert_gone(services, "my-app")
