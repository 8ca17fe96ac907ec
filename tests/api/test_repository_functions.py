"""The domain functions of ``pulp_registry.repositories``, called directly as the push side and workers do."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pulp_registry import content, published_format, repositories
from pulp_registry.publish import publish_repository
from tests.api.helpers import store_image


def test_ensure_repository_creates_once_and_then_finds(services):
    created = repositories.ensure_repository(services.db, "my/app")
    assert (created["_id"], created["name"], created["protected"]) == ("my-app", "my/app", False)
    assert repositories.ensure_repository(services.db, "my/app")["_id"] == "my-app"
    assert services.db.repositories.count_documents({}) == 1
    assert repositories.find_repository_by_name(services.db, "my/app")["_id"] == "my-app"
    assert repositories.get_repository(services.db, "my-app")["name"] == "my/app"
    assert repositories.find_repository_by_name(services.db, "other") is None


def test_ensure_repository_takes_the_next_id_when_the_default_is_taken(services):
    repositories.create_repository(services.db, "other/name", repo_id="my-app")
    assert repositories.default_repo_id(services.db, "my/app") == "my-app-2"
    assert repositories.ensure_repository(services.db, "my/app")["_id"] == "my-app-2"


def test_concurrent_first_pushes_create_one_repository(services):
    results: list[str] = []
    errors: list[BaseException] = []

    def push() -> None:
        try:
            results.append(repositories.ensure_repository(services.db, "race/app")["_id"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(results) == {"race-app"}
    assert services.db.repositories.count_documents({"name": "race/app"}) == 1


def test_create_refuses_bad_input_with_the_field(services):
    with pytest.raises(repositories.RepositoryError) as raised:
        repositories.create_repository(services.db, "Bad Name")
    assert raised.value.field == "name"
    repositories.create_repository(services.db, "my/app")
    with pytest.raises(repositories.RepositoryExists) as raised:
        repositories.create_repository(services.db, "my/app")
    assert raised.value.field == "name"


def test_update_reports_whether_protected_changed(services):
    repositories.create_repository(services.db, "my/app")
    repo, changed = repositories.update_repository(services.db, "my-app", {"protected": True})
    assert repo["protected"] is True and changed
    repo, changed = repositories.update_repository(services.db, "my-app", {"protected": True, "description": "d"})
    assert repo["description"] == "d" and not changed
    with pytest.raises(repositories.RepositoryNotFound):
        repositories.update_repository(services.db, "nope", {})


def test_delete_repository_removes_associations_uploads_and_the_published_tree(services, settings):
    repo = repositories.ensure_repository(services.db, "my/app")
    image = store_image(services, repo, "latest", b"layer")
    upload_id = content.start_upload(services, "my/app", repo["_id"])
    other = repositories.ensure_repository(services.db, "other/app")
    store_image(services, other, "latest", b"layer")
    publish_repository(services, repo["_id"])
    repo_dir = published_format.repository_dir(Path(settings.published_dir), "my/app")
    assert repo_dir.exists()

    result = repositories.delete_repository(services, repo["_id"])

    assert result["removed"] == {"tags": 1, "manifests": 1, "blobs": 2, "uploads": 1}
    assert repositories.get_repository(services.db, "my-app") is None
    assert services.db.uploads.find_one({"_id": upload_id}) is None
    assert not repo_dir.exists()
    assert services.storage.exists(image.digest)
    assert repositories.repository_counts(services.db, "other-app")["tag_count"] == 1
    with pytest.raises(repositories.RepositoryNotFound):
        repositories.delete_repository(services, repo["_id"])


def test_repository_json_shows_notes_as_an_object_and_times_in_utc(services):
    repo = repositories.create_repository(services.db, "my/app", notes={"k": "v"}, description="d")
    shown = repositories.repository_json(repo, {"tag_count": 0})
    assert shown["notes"] == {"k": "v"}
    assert shown["created"].endswith("Z")
    assert shown["tag_count"] == 0
