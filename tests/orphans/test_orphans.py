"""Orphan clean-up: what it finds, what it removes (and keeps), explain, and the REST API."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pulp_registry import content, orphan_explanations, orphans, repositories
from pulp_registry.publish import prepare_published_tree, publish_repository
from pulp_registry.tasks import TaskCanceled
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.orphans.helpers import (HOUR, age, age_everything, age_path, gone, no_progress, published_path,
                                   stored)
from tests.publish.sample_content import make_repository, push_image, push_index


def _blob_digests(raw: bytes) -> list[str]:
    manifest = json.loads(raw)
    return [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]


def _sizes(services, digests) -> int:
    return sum(services.storage.size(digest) for digest in digests)


@pytest.fixture
def two_repositories(services):
    """``keep/app`` and ``drop/app`` published; they share one layer."""
    keep = make_repository(services, "keep/app")
    drop = make_repository(services, "drop/app")
    keep_digest, keep_raw = push_image(services, keep, "v1", [b"shared layer", b"keep layer"])
    drop_digest, drop_raw = push_image(services, drop, "v1", [b"shared layer", b"drop layer"])
    for repo in (keep, drop):
        publish_repository(services, repo["_id"])
    return {"keep": (keep, keep_digest, keep_raw), "drop": (drop, drop_digest, drop_raw)}


def test_a_repository_deleted_leaves_orphans_that_cleanup_removes_from_storage_and_the_published_tree(
        services, two_repositories):
    drop, drop_digest, drop_raw = two_repositories["drop"]
    keep, keep_digest, keep_raw = two_repositories["keep"]
    repositories.delete_repository(services, drop["_id"])
    age_everything(services)

    only_drop = [drop_digest] + [digest for digest in _blob_digests(drop_raw) if digest not in _blob_digests(keep_raw)]
    expected_bytes = _sizes(services, only_drop)
    found = orphans.find_orphans(services)
    assert {unit["digest"] for unit in found["manifests"]} == {drop_digest}
    assert {unit["digest"] for unit in found["blobs"]} == set(only_drop) - {drop_digest}
    assert found["count"] == len(only_drop) and found["bytes"] == expected_bytes
    assert all(published_path(services, digest).exists() for digest in only_drop)

    result = orphans.cleanup_orphans(services, no_progress)
    assert result == {"blobs": len(only_drop) - 1, "manifests": 1, "uploads": 0, "temporary_files": 0,
                      "bytes_freed": expected_bytes}
    assert all(gone(services, digest) for digest in only_drop)
    for digest in [keep_digest] + _blob_digests(keep_raw):
        assert stored(services, digest) and published_path(services, digest).exists()

    again = orphans.find_orphans(services, 0)
    assert again["count"] == 0 and again["bytes"] == 0
    assert orphans.cleanup_orphans(services, no_progress, grace_period=0)["bytes_freed"] == 0


def test_the_grace_period_keeps_young_orphans_and_zero_removes_everything_unreferenced(services):
    repo = make_repository(services, "young/app")
    digest, raw = push_image(services, repo, "v1", [b"young layer"])
    repositories.delete_repository(services, repo["_id"])

    assert orphans.find_orphans(services)["count"] == 0          # default: one hour
    assert orphans.cleanup_orphans(services, no_progress)["bytes_freed"] == 0
    assert all(stored(services, unit) for unit in [digest] + _blob_digests(raw))

    assert orphans.find_orphans(services, grace_period=0)["count"] == 3
    result = orphans.cleanup_orphans(services, no_progress, grace_period=0)
    assert (result["manifests"], result["blobs"]) == (1, 2)
    assert all(gone(services, unit) for unit in [digest] + _blob_digests(raw))


def test_an_index_and_the_children_only_it_names_go_in_one_cleanup(services):
    repo = make_repository(services, "multi/app")
    children = [push_image(services, repo, None, [arch.encode()], architecture=arch) for arch in ("amd64", "arm64")]
    index_digest, _raw = push_index(services, repo, "latest",
                                    [(digest, raw, {"os": "linux", "architecture": arch})
                                     for (digest, raw), arch in zip(children, ("amd64", "arm64"))])
    repositories.delete_repository(services, repo["_id"])
    age_everything(services)

    found = orphans.find_orphans(services)
    manifest_order = [unit["digest"] for unit in found["manifests"]]
    assert manifest_order[0] == index_digest and len(manifest_order) == 3
    result = orphans.cleanup_orphans(services, no_progress)
    assert result["manifests"] == 3 and result["blobs"] == 4
    assert gone(services, index_digest) and all(gone(services, digest) for digest, _raw in children)


def test_a_blob_a_held_manifest_names_is_kept_without_an_association(services):
    repo = make_repository(services, "held/app")
    digest, raw = push_image(services, repo, "v1", [b"layer"])
    layer = _blob_digests(raw)[1]
    services.db.repo_blobs.delete_one({"repo_id": repo["_id"], "digest": layer})
    age_everything(services)

    assert orphans.find_orphans(services, 0)["count"] == 0
    orphans.cleanup_orphans(services, no_progress, grace_period=0)
    assert stored(services, layer)
    explanation = orphan_explanations.explain(services, layer)
    assert explanation["orphan"] is False
    assert explanation["held_by"] == [{"repository": "held/app", "repo_id": repo["_id"], "tags": ["v1"],
                                       "manifests": [digest]}]


def test_an_association_that_appears_during_cleanup_keeps_the_unit_whole(services):
    repo = make_repository(services, "race/app")
    blob = content.store_blob(services, repo, b"about to be used again")
    services.db.repo_blobs.delete_many({})
    age(services, blob)

    def push_arrives(report):
        if report["step"] == "blobs" and report["done"] == 0:   # after the scan, before the removal
            content.add_blob(services, repo, blob, services.storage.size(blob))

    result = orphans.cleanup_orphans(services, push_arrives)
    assert result["blobs"] == 0
    assert stored(services, blob) and content.repo_blob(services.db, repo["_id"], blob) is not None


def test_pushing_old_orphaned_bytes_again_makes_them_young(services):
    repo = make_repository(services, "again/app")
    data = b"orphaned long ago"
    blob = content.store_blob(services, repo, data)
    services.db.repo_blobs.delete_many({})
    age(services, blob)
    assert [unit["digest"] for unit in orphans.find_orphans(services)["blobs"]] == [blob]

    services.storage.put_bytes(data, blob)   # a push writes the bytes again: its association comes next
    assert orphans.find_orphans(services)["count"] == 0
    assert orphans.cleanup_orphans(services, no_progress)["blobs"] == 0
    assert stored(services, blob)


def test_bytes_written_again_between_the_scan_and_the_removal_are_kept_with_their_document(services):
    repo = make_repository(services, "window/app")
    data = b"re-pushed while clean-up runs"
    blob = content.store_blob(services, repo, data)
    services.db.repo_blobs.delete_many({})
    age(services, blob)

    def push_writes_the_bytes(report):
        if report["step"] == "blobs" and report["done"] == 0:   # the push's storage write, its association next
            services.storage.put_bytes(data, blob)

    assert orphans.cleanup_orphans(services, push_writes_the_bytes)["blobs"] == 0
    assert stored(services, blob)
    content.add_blob(services, repo, blob, len(data))           # the push goes on and finds its blob


def test_files_without_a_document_go_once_older_than_the_grace_period(services):
    data = b"a push died before its document"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    services.storage.put_bytes(data, digest)
    assert orphans.find_orphans(services)["count"] == 0
    age_path(services.storage.path(digest))
    assert [unit["digest"] for unit in orphans.find_orphans(services)["blobs"]] == [digest]
    assert orphans.cleanup_orphans(services, no_progress)["bytes_freed"] == len(data)
    assert not services.storage.exists(digest)


def test_a_published_file_no_version_lists_goes_and_a_recently_superseded_version_keeps_its_files(services):
    repo = make_repository(services, "tags/app")
    old_digest, _ = push_image(services, repo, "old", [b"old layer"])
    publish_repository(services, repo["_id"])
    services.db.tags.delete_many({"repo_id": repo["_id"], "name": "old"})
    services.db.repo_manifests.delete_many({"repo_id": repo["_id"], "digest": old_digest})
    new_digest, _ = push_image(services, repo, "new", [b"new layer"])
    publish_repository(services, repo["_id"])
    age_everything(services)
    # The switch to the new version is seconds old: a Crane may still serve the previous one,
    # so its published file stays while the unit leaves the database and content storage.
    orphans.cleanup_orphans(services, no_progress)
    assert not services.storage.exists(old_digest) and published_path(services, old_digest).exists()

    age_path(Path(services.settings.published_dir) / "repositories" / "tags%2Fapp" / "current")
    assert [unit["digest"] for unit in orphans.find_orphans(services)["blobs"]] == [old_digest]
    orphans.cleanup_orphans(services, no_progress)
    assert gone(services, old_digest)
    assert stored(services, new_digest) and published_path(services, new_digest).exists()


def test_a_pull_under_way_reads_the_blob_to_the_end_after_cleanup_removed_it(services, two_repositories):
    drop, _digest, drop_raw = two_repositories["drop"]
    layer = _blob_digests(drop_raw)[-1]
    expected = services.storage.read(layer)
    with open(published_path(services, layer), "rb") as pull:
        first = pull.read(3)
        repositories.delete_repository(services, drop["_id"])
        orphans.cleanup_orphans(services, no_progress, grace_period=0)
        assert gone(services, layer)
        assert first + pull.read() == expected


def test_leftovers_of_crashes_and_expired_upload_sessions_go_and_live_sessions_stay(services):
    storage = services.storage
    root = Path(services.settings.published_dir)
    prepare_published_tree(root)
    publish_repository(services, make_repository(services, "journaled/app")["_id"])
    journal_and_catalog = {path: path.read_bytes() for directory in (root / "journal", root / "catalog")
                           for path in directory.iterdir()}
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    leftovers = {
        storage.tmp_dir / "tmpabc": b"partial monolithic upload",
        storage.uploads_dir / "0b7f5d1e-1111-4222-8333-444455556666.finishing-abc": b"finish cut short",
        root / "blobs" / "sha256" / ".abc.1234.tmp": b"link of a killed publish",
        root / ".FORMAT.1234.tmp": b"pulp-registry-published 2\n",
        root / "journal" / ".HEAD.1234.tmp": b"2 0123",
        root / "catalog" / ".all.1234.tmp": b"journaled/app\n",
    }
    for path, data in leftovers.items():
        path.write_bytes(data)
    trash = root / ".trash-1234"
    (trash / "versions" / "v1").mkdir(parents=True)
    (trash / "versions" / "v1" / "repository.json").write_bytes(b"{}")
    orphan_session = storage.upload_start()                     # its document was never written
    storage.upload_append(orphan_session, [b"12345"])
    expired = content.start_upload(services, "some/app", None)
    storage.upload_append(expired, [b"abc"])
    live = content.start_upload(services, "some/app", None)
    storage.upload_append(live, [b"live"])
    documented_only = content.start_upload(services, "some/app", None)
    storage.upload_cancel(documented_only)                      # the document stayed, its file is gone

    assert orphans.find_orphans(services)["leftovers"]["uploads"] == 0   # everything is young
    age_path(storage.uploads_dir / expired, 25 * HOUR)
    found = orphans.find_orphans(services, grace_period=0)["leftovers"]
    assert found == {"uploads": 4, "temporary_files": 6, "bytes": sum(map(len, leftovers.values())) + 2 + 5 + 3}

    result = orphans.cleanup_orphans(services, no_progress, grace_period=0)
    assert (result["uploads"], result["temporary_files"]) == (4, 6)
    assert all(not path.exists() for path in leftovers) and not trash.exists()
    assert {path: path.read_bytes() for path in journal_and_catalog} == journal_and_catalog
    assert {upload["_id"] for upload in services.db.uploads.find()} == {live}
    assert storage.upload_size(live) == 4
    assert not (storage.uploads_dir / expired).exists() and not (storage.uploads_dir / orphan_session).exists()


def test_an_upload_a_patch_is_writing_is_never_removed(services):
    import fcntl

    upload_id = services.storage.upload_start()
    age_path(services.storage.uploads_dir / upload_id)
    fd = os.open(services.storage.uploads_dir / upload_id, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)     # as upload_append holds it while a chunk arrives
        assert orphans.cleanup_orphans(services, no_progress, grace_period=0)["uploads"] == 0
    finally:
        os.close(fd)
    assert (services.storage.uploads_dir / upload_id).exists()


def test_a_cleanup_stopped_between_units_leaves_every_unit_whole_or_gone(services, two_repositories):
    drop, drop_digest, drop_raw = two_repositories["drop"]
    repositories.delete_repository(services, drop["_id"])
    calls = []

    def cancel_after_the_first_unit(report):
        calls.append(report)
        if report["done"] == 1:
            raise TaskCanceled("canceled")

    with pytest.raises(TaskCanceled):
        orphans.cleanup_orphans(services, cancel_after_the_first_unit, grace_period=0)
    assert gone(services, drop_digest)          # the manifest went first, whole
    drop_layer = _blob_digests(drop_raw)[-1]
    assert stored(services, drop_layer) and published_path(services, drop_layer).exists()
    orphans.cleanup_orphans(services, no_progress, grace_period=0)
    assert orphans.find_orphans(services, 0)["count"] == 0


def test_explain_names_repositories_tags_and_manifests_and_says_why(services, two_repositories):
    keep, keep_digest, keep_raw = two_repositories["keep"]
    drop, drop_digest, drop_raw = two_repositories["drop"]
    shared = _blob_digests(keep_raw)[1]
    explanation = orphan_explanations.explain(services, shared)
    assert explanation["kind"] == "blob" and explanation["stored"] and not explanation["orphan"]
    assert [(entry["repository"], entry["tags"], entry["manifests"]) for entry in explanation["held_by"]] == [
        ("drop/app", ["v1"], [drop_digest]), ("keep/app", ["v1"], [keep_digest])]
    assert "held by 2 repositories (drop/app, keep/app)" in explanation["reason"]

    manifest = orphan_explanations.explain(services, keep_digest)
    assert manifest["kind"] == "manifest" and manifest["held_by"][0]["tags"] == ["v1"]

    repositories.delete_repository(services, drop["_id"])
    alone = orphan_explanations.explain(services, drop_digest)
    assert alone["orphan"] and alone["held_by"] == [] and "grace period" in alone["reason"]
    age(services, drop_digest)
    assert "next clean-up removes it" in orphan_explanations.explain(services, drop_digest)["reason"]

    unknown = orphan_explanations.explain(services, "sha256:" + "0" * 64)
    assert unknown["kind"] == "unknown" and not unknown["stored"] and not unknown["orphan"]
    with pytest.raises(orphans.OrphanError) as error:
        orphan_explanations.explain(services, "sha256:nothex")
    assert error.value.field == "digest"


# --- REST API ---------------------------------------------------------------------------------


def test_the_api_lists_cleans_up_and_explains(client, auth, services, two_repositories):
    drop, drop_digest, _raw = two_repositories["drop"]
    repositories.delete_repository(services, drop["_id"])
    listed = client.get("/pulp/api/v2/orphans/?grace_period=0", headers=auth)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["grace_period"] == 0 and body["count"] == 2 and body["bytes"] > 0
    assert set(body["leftovers"]) == {"uploads", "temporary_files", "bytes"}
    assert client.get("/pulp/api/v2/orphans/", headers=auth).get_json()["count"] == 0

    explained = client.get(f"/pulp/api/v2/orphans/{drop_digest}/", headers=auth)
    assert explained.status_code == 200 and explained.get_json()["orphan"] is True

    started = client.post("/pulp/api/v2/orphans/actions/cleanup/", json={"grace_period": 0}, headers=auth)
    assert started.status_code == 202
    [spawned] = started.get_json()["spawned_tasks"]
    task = client.get(spawned["_href"], headers=auth).get_json()
    assert task["task_type"] == "orphan_cleanup" and task["resources"] == ["orphans"]
    assert task["state"] == "finished", task
    assert task["result"]["manifests"] == 1 and task["result"]["bytes_freed"] == body["bytes"]
    assert gone(services, drop_digest)


@pytest.mark.parametrize("value", [-1, "soon", 1.5, True])
def test_a_bad_grace_period_is_a_400_naming_it(client, auth, value):
    response = client.post("/pulp/api/v2/orphans/actions/cleanup/", json={"grace_period": value}, headers=auth)
    assert response.status_code == 400 and response.get_json()["field"] == "grace_period"
    query = client.get("/pulp/api/v2/orphans/", query_string={"grace_period": str(value)}, headers=auth)
    assert query.status_code == 400 and query.get_json()["field"] == "grace_period"


def test_an_invalid_digest_is_a_400_naming_it(client, auth):
    response = client.get("/pulp/api/v2/orphans/sha256:xyz/", headers=auth)
    assert response.status_code == 400 and response.get_json()["field"] == "digest"


def test_orphans_are_for_super_users_only(client, services):
    create_user(services.db, "bob", "bob-password", rounds=4)
    bob = basic_auth("bob", "bob-password")
    assert client.get("/pulp/api/v2/orphans/", headers=bob).status_code == 403
    assert client.get(f"/pulp/api/v2/orphans/sha256:{'0' * 64}/", headers=bob).status_code == 403
    assert client.post("/pulp/api/v2/orphans/actions/cleanup/", json={}, headers=bob).status_code == 403
    assert client.get("/pulp/api/v2/orphans/").status_code == 401
