"""``/pulp/api/v2/repositories/``: create, list, show with counts, update, delete, publish."""
from __future__ import annotations

from pathlib import Path

import pytest

from pulp_registry import published_format, repositories, tasks
from tests.api.helpers import store_image, wait_task

REPOS = "/pulp/api/v2/repositories/"


def test_create_answers_201_with_the_repository_and_its_location(client, auth):
    response = client.post(REPOS, json={"name": "my/app", "description": "the app", "notes": {"team": "web"},
                                        "protected": True}, headers=auth)
    assert response.status_code == 201
    repo = response.get_json()
    assert repo["id"] == "my-app"
    assert repo["name"] == "my/app"
    assert repo["description"] == "the app"
    assert repo["notes"] == {"team": "web"}
    assert repo["protected"] is True
    assert repo["last_published"] is None
    assert repo["created"].endswith("Z") and repo["updated"] == repo["created"]
    assert repo["_href"] == "/pulp/api/v2/repositories/my-app/"
    assert response.headers["Location"].endswith("/pulp/api/v2/repositories/my-app/")


def test_create_with_an_explicit_id_and_defaults(client, auth, create_repo):
    repo = create_repo("team/tool", id="tool")
    assert (repo["id"], repo["description"], repo["notes"], repo["protected"]) == ("tool", "", {}, False)
    assert client.get("/pulp/api/v2/repositories/tool/", headers=auth).status_code == 200


def test_default_id_gets_a_number_when_taken(create_repo):
    assert create_repo("my-app")["id"] == "my-app"
    assert create_repo("my/app")["id"] == "my-app-2"
    assert create_repo("my_app", id="my-app-3")["id"] == "my-app-3"
    assert create_repo("my/app/x")["id"] == "my-app-x"


def test_notes_are_stored_as_pairs_so_user_keys_never_become_field_names(client, auth, services):
    client.post(REPOS, json={"name": "a/b", "notes": {"$where": "x", "a.b": "y"}}, headers=auth)
    stored = services.db.repositories.find_one({"_id": "a-b"})
    assert stored["notes"] == [["$where", "x"], ["a.b", "y"]]
    assert client.get("/pulp/api/v2/repositories/a-b/", headers=auth).get_json()["notes"] == {"$where": "x",
                                                                                              "a.b": "y"}


@pytest.mark.parametrize("body, field", [
    ({"name": "My/App"}, "name"),
    ({"name": "my//app"}, "name"),
    ({"name": 42}, "name"),
    ({"description": "no name"}, "name"),
    ({"name": "my/app", "colour": "red"}, "colour"),
    ({"name": "my/app", "id": "has/slash"}, "id"),
    ({"name": "my/app", "id": ""}, "id"),
    ({"name": "my/app", "description": 3}, "description"),
    ({"name": "my/app", "notes": ["a", "b"]}, "notes"),
    ({"name": "my/app", "notes": {"a": 1}}, "notes"),
    ({"name": "my/app", "protected": "yes"}, "protected"),
])
def test_invalid_create_bodies_answer_400_naming_the_field_and_create_nothing(client, auth, services, body, field):
    response = client.post(REPOS, json=body, headers=auth)
    assert response.status_code == 400
    error = response.get_json()
    assert error["field"] == field
    assert error["message"]
    assert services.db.repositories.count_documents({}) == 0


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b"\"my/app\""])
def test_a_body_that_is_not_a_json_object_answers_400(client, auth, services, data):
    response = client.post(REPOS, data=data, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "body"
    assert services.db.repositories.count_documents({}) == 0


def test_duplicate_name_or_id_answers_409(client, auth, create_repo):
    create_repo("my/app")
    response = client.post(REPOS, json={"name": "my/app", "id": "other"}, headers=auth)
    assert response.status_code == 409
    assert response.get_json()["field"] == "name"
    response = client.post(REPOS, json={"name": "other/app", "id": "my-app"}, headers=auth)
    assert response.status_code == 409
    assert response.get_json()["field"] == "id"
    assert len(client.get(REPOS, headers=auth).get_json()) == 1


def test_list_is_sorted_by_id_and_filters_by_name(client, auth, create_repo):
    create_repo("zeta")
    create_repo("alpha/one")
    listed = client.get(REPOS, headers=auth).get_json()
    assert [repo["id"] for repo in listed] == ["alpha-one", "zeta"]
    filtered = client.get(REPOS, query_string={"name": "zeta"}, headers=auth).get_json()
    assert [repo["name"] for repo in filtered] == ["zeta"]
    assert client.get(REPOS, query_string={"name": "nothing/here"}, headers=auth).get_json() == []


def test_show_counts_tags_manifests_blobs_and_their_total_size(client, auth, services, create_repo):
    create_repo("my/app")
    empty = client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()
    assert (empty["tag_count"], empty["manifest_count"], empty["blob_count"], empty["total_size"]) == (0, 0, 0, 0)

    repo = repositories.get_repository(services.db, "my-app")
    first = store_image(services, repo, "v1", b"layer one")
    second = store_image(services, repo, "v2", b"layer two, longer")
    store_image(services, repo, "latest", b"layer two, longer")  # same image again: counted once
    shown = client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()
    assert shown["tag_count"] == 3
    assert shown["manifest_count"] == 2
    config_and_layers = {**first.blob_sizes, **second.blob_sizes}
    assert shown["blob_count"] == len(config_and_layers) == 3  # one config shared by both images
    assert shown["total_size"] == first.manifest_size + second.manifest_size + sum(config_and_layers.values())
    assert shown["id"] == "my-app" and shown["_href"] == "/pulp/api/v2/repositories/my-app/"


@pytest.mark.parametrize("method, path", [
    ("get", "/pulp/api/v2/repositories/nope/"),
    ("put", "/pulp/api/v2/repositories/nope/"),
    ("delete", "/pulp/api/v2/repositories/nope/"),
    ("post", "/pulp/api/v2/repositories/nope/actions/publish/"),
    ("get", "/pulp/api/v2/repositories/nope/images/"),
    ("get", "/pulp/api/v2/repositories/nope/tags/"),
    ("get", "/pulp/api/v2/repositories/nope/tags/latest/"),
])
def test_unknown_repository_answers_404(client, auth, services, method, path):
    response = getattr(client, method)(path, json={"delta": {}} if method == "put" else None, headers=auth)
    assert response.status_code == 404
    assert "nope" in response.get_json()["message"]
    assert services.db.tasks.count_documents({}) == 0


def test_update_description_and_merge_notes(client, auth, create_repo):
    create_repo("my/app", notes={"team": "web", "owner": "ann"})
    response = client.put("/pulp/api/v2/repositories/my-app/",
                          json={"delta": {"description": "new", "notes": {"owner": None, "tier": "gold"}}},
                          headers=auth)
    assert response.status_code == 200
    repo = response.get_json()
    assert repo["description"] == "new"
    assert repo["notes"] == {"team": "web", "tier": "gold"}
    assert repo["updated"] >= repo["created"]
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()["description"] == "new"


@pytest.mark.parametrize("body, field", [
    ({"delta": {"name": "other/name"}}, "delta.name"),
    ({"delta": {"colour": "red"}}, "delta.colour"),
    ({"delta": {"protected": "yes"}}, "delta.protected"),
    ({"delta": {"notes": {"a": 5}}}, "delta.notes"),
    ({"delta": {"description": None}}, "delta.description"),
    ({"delta": "description"}, "delta"),
    ({"description": "x"}, "description"),
    ({}, "delta"),
])
def test_invalid_updates_answer_400_naming_the_field_and_change_nothing(client, auth, create_repo, body, field):
    before = create_repo("my/app", description="old")
    response = client.put("/pulp/api/v2/repositories/my-app/", json=body, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == field
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()["description"] == "old"
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()["updated"] == before["updated"]


def test_update_with_the_same_name_is_accepted(client, auth, create_repo):
    create_repo("my/app")
    response = client.put("/pulp/api/v2/repositories/my-app/", json={"delta": {"name": "my/app"}}, headers=auth)
    assert response.status_code == 200


def test_changing_protected_republishes_with_a_202_call_report(client, auth, services, create_repo):
    create_repo("my/app")
    response = client.put("/pulp/api/v2/repositories/my-app/", json={"delta": {"protected": True}}, headers=auth)
    assert response.status_code == 202
    report = response.get_json()
    assert report["error"] is None
    assert report["result"]["protected"] is True
    [spawned] = report["spawned_tasks"]
    assert spawned["_href"] == f"/pulp/api/v2/tasks/{spawned['task_id']}/"
    task = wait_task(client, auth, report)
    assert task["task_type"] == "publish"
    assert task["resources"] == ["repository:my-app"]
    assert task["state"] == "finished", task
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()["last_published"]

    # Setting the same value again changes nothing and spawns nothing.
    again = client.put("/pulp/api/v2/repositories/my-app/", json={"delta": {"protected": True}}, headers=auth)
    assert again.status_code == 200
    assert services.db.tasks.count_documents({}) == 1


def test_publish_action_spawns_a_publish_task_that_writes_the_published_tree(client, auth, services, settings,
                                                                              create_repo):
    create_repo("my/app")
    image = store_image(services, repositories.get_repository(services.db, "my-app"), "latest", b"layer")
    response = client.post("/pulp/api/v2/repositories/my-app/actions/publish/", headers=auth)
    assert response.status_code == 202
    task = wait_task(client, auth, response.get_json())
    assert (task["task_type"], task["state"]) == ("publish", "finished")
    published = published_format.blob_path(Path(settings.published_dir), image.digest)
    assert published.exists()
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).get_json()["last_published"]


def test_publish_action_refuses_unknown_options(client, auth, services, create_repo):
    create_repo("my/app")
    response = client.post("/pulp/api/v2/repositories/my-app/actions/publish/", json={"force": True}, headers=auth)
    assert response.status_code == 400
    assert response.get_json()["field"] == "force"
    assert services.db.tasks.count_documents({}) == 0


def test_delete_spawns_a_task_that_removes_the_repository_but_keeps_content(client, auth, services, settings,
                                                                             create_repo):
    create_repo("my/app")
    image = store_image(services, repositories.get_repository(services.db, "my-app"), "latest", b"layer")
    publish = client.post("/pulp/api/v2/repositories/my-app/actions/publish/", headers=auth)
    assert wait_task(client, auth, publish.get_json())["state"] == "finished"
    repo_dir = published_format.repository_dir(Path(settings.published_dir), "my/app")
    assert repo_dir.exists()

    response = client.delete("/pulp/api/v2/repositories/my-app/", headers=auth)
    assert response.status_code == 202
    task = wait_task(client, auth, response.get_json())
    assert (task["task_type"], task["state"], task["resources"]) == ("delete_repository", "finished",
                                                                     ["repository:my-app"])
    assert client.get("/pulp/api/v2/repositories/my-app/", headers=auth).status_code == 404
    for collection in (services.db.tags, services.db.repo_manifests, services.db.repo_blobs):
        assert collection.count_documents({"repo_id": "my-app"}) == 0
    assert not repo_dir.exists()
    # Content units stay until orphan clean-up.
    assert services.db.manifests.find_one({"_id": image.digest}) is not None
    assert services.storage.exists(image.digest)
    # The name is free again.
    assert client.post(REPOS, json={"name": "my/app"}, headers=auth).status_code == 201


def test_deleting_again_while_the_delete_is_pending_answers_the_same_task(client, auth, services, create_repo):
    create_repo("my/app")
    pending = tasks.create_task(services.db, "delete_repository", [tasks.repository_resource("my-app")],
                                {"repo_id": "my-app"})  # queued, not yet taken by a worker

    response = client.delete("/pulp/api/v2/repositories/my-app/", headers=auth)

    assert response.status_code == 202
    assert [t["task_id"] for t in response.get_json()["spawned_tasks"]] == [pending["_id"]]
    assert services.db.tasks.count_documents({"task_type": "delete_repository"}) == 1
