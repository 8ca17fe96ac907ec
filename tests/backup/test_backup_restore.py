"""Backup and restore as functions: what a backup holds, what a restore gives back, what each refuses."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import bson
import pytest

from pulp_registry import maintenance, tasks
from pulp_registry.backup import METADATA_FILE, BackupError, backup, collection_names, content_path
from pulp_registry.db import INDEXES
from pulp_registry.restore import NOT_RESTORED, RestoreError, check_backup, restore
from tests.backup.conftest import PROBE, empty_install

FAST = {"settle_seconds": 0}
COMPARED = ["blobs", "manifests", "repo_blobs", "repo_manifests", "tags", "users", "roles", "permissions",
            "feed_credentials", "tasks"]


def encoded(collection, query=None) -> dict:
    """Documents as BSON bytes by ``_id``: equal only if every value and type is equal."""
    return {str(document["_id"]): bson.encode(document) for document in collection.find(query or {})}


def published_json(services, name: str) -> dict:
    root = Path(services.settings.published_dir) / "repositories" / name.replace("/", "%2F")
    document = json.loads((root / "current" / "repository.json").read_text())
    return {key: document[key] for key in ("name", "tags", "manifests", "blobs", "protected")}


def test_a_backup_holds_every_collection_every_content_file_and_metadata_written_last(services, filled, tmp_path):
    result = backup(services, tmp_path / "bk", **FAST)

    metadata = json.loads((tmp_path / "bk" / METADATA_FILE).read_text())
    assert set(INDEXES) <= set(metadata["collections"])
    assert metadata["format"] == "pulp-registry-backup" and metadata["format_version"] == 1
    assert metadata["counts"]["repositories"] == 2 and metadata["counts"]["tags"] == 3
    stored = {stored.digest: stored.size for stored in services.storage.iter_content()}
    listed = [line.split(" ") for line in (tmp_path / "bk" / "content.txt").read_text().splitlines()]
    assert {digest: int(size) for digest, size, _ in listed} == stored
    for digest, _size, path in listed:
        assert (tmp_path / "bk" / path).read_bytes() == services.storage.read(digest)
    assert result.content_files == len(stored) and not result.damaged
    check_backup(tmp_path / "bk")


def test_restore_into_an_empty_install_gives_back_every_document_exactly_and_republishes(services, filled,
                                                                                        target, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    result = restore(target, tmp_path / "bk")

    for name in COMPARED:
        assert encoded(target.db.database[name]) == encoded(services.db.database[name]), name
    assert encoded(target.db.system, {"_id": PROBE["_id"]}) == {PROBE["_id"]: bson.encode(PROBE)}
    restored_probe = target.db.system.find_one({"_id": PROBE["_id"]})
    assert type(restored_probe["object_id"]) is type(PROBE["object_id"])
    assert restored_probe["uuid"] == PROBE["uuid"] and restored_probe["uuid"].subtype == 4
    for digest in filled.manifests:
        assert target.storage.read(digest) == filled.manifests[digest]
    assert sorted(result.published) == ["base", "team/app"]
    for name in ("base", "team/app"):
        assert published_json(target, name) == published_json(services, name)
    assert maintenance.read_only_state(target.db) is None


def test_the_read_only_switch_and_process_state_are_not_restored(services, filled, target, tmp_path):
    services.db.workers.insert_one({"_id": "old-worker@host", "last_heartbeat": PROBE["when"]})
    backup(services, tmp_path / "bk", **FAST)
    assert "read_only" not in {doc["_id"] for doc in bson.decode_all((tmp_path / "bk/database/system.bson").read_bytes())}

    restore(target, tmp_path / "bk")

    assert target.db.workers.count_documents({"_id": "old-worker@host"}) == 0
    assert set(NOT_RESTORED) == {"workers", "locks", "uploads"}


def test_backup_switches_read_only_on_while_it_works_and_off_at_the_end(services, filled, tmp_path):
    seen = []
    backup(services, tmp_path / "bk", report=lambda line: seen.append((line, maintenance.read_only_state(services.db))),
           **FAST)

    during = [state for line, state in seen if line.startswith(("database:", "content:"))]
    assert during and all(state and state["reason"] == "backup" for state in during)
    assert maintenance.read_only_state(services.db) is None


def test_backup_leaves_read_only_on_when_it_was_on_before(services, filled, tmp_path):
    maintenance.enter_read_only(services.db, "disk replacement")
    result = backup(services, tmp_path / "bk", **FAST)

    assert result.read_only_kept
    assert maintenance.read_only_state(services.db)["reason"] == "disk replacement"


def test_backup_waits_for_running_tasks_then_dumps(services, filled, tmp_path):
    task = tasks.create_task(services.db, "publish", ["repository:base"], {"repo_id": "base"})

    def finish_later() -> None:
        time.sleep(0.8)
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"state": "finished"}})

    thread = threading.Thread(target=finish_later)
    thread.start()
    lines = []
    backup(services, tmp_path / "bk", timeout=10, report=lines.append, **FAST)
    thread.join()

    assert any(line.startswith("waiting for 1 tasks to end: publish") for line in lines)
    dumped = bson.decode_all((tmp_path / "bk/database/tasks.bson").read_bytes())
    assert [doc["state"] for doc in dumped if doc["_id"] == task["_id"]] == ["finished"]


def test_backup_gives_up_after_timeout_with_one_line_and_read_only_off(services, filled, tmp_path):
    task = tasks.create_task(services.db, "publish", ["repository:base"], {"repo_id": "base"})

    with pytest.raises(BackupError, match=f"tasks still waiting or running after 0.3 s: publish {task['_id']}"):
        backup(services, tmp_path / "bk", timeout=0.3, **FAST)

    assert maintenance.read_only_state(services.db) is None
    assert not (tmp_path / "bk" / METADATA_FILE).exists()


def test_backup_never_writes_into_a_directory_that_is_not_empty(services, filled, tmp_path):
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "keep.txt").write_text("mine")

    with pytest.raises(BackupError, match="is not empty"):
        backup(services, tmp_path / "bk", **FAST)

    assert [path.name for path in (tmp_path / "bk").iterdir()] == ["keep.txt"]
    assert maintenance.read_only_state(services.db) is None


def test_backup_with_link_hard_links_content_files(services, filled, tmp_path):
    backup(services, tmp_path / "bk", link=True, **FAST)

    for stored in services.storage.iter_content():
        copy = tmp_path / "bk" / content_path(stored.digest)
        assert copy.stat().st_ino == services.storage.local_path(stored.digest).stat().st_ino


def test_a_damaged_content_file_is_left_out_of_the_backup_and_named(services, filled, tmp_path):
    digest = next(iter(filled.manifests))
    path = services.storage.local_path(digest)
    path.write_bytes(path.read_bytes().replace(b"schemaVersion", b"schemaversion"))

    result = backup(services, tmp_path / "bk", **FAST)

    assert result.damaged == [digest]
    assert json.loads((tmp_path / "bk" / METADATA_FILE).read_text())["damaged"] == [digest]
    assert digest not in (tmp_path / "bk" / "content.txt").read_text()


def test_every_collection_of_the_database_is_dumped_also_unknown_ones(services, filled, tmp_path):
    services.db.database["added_later"].insert_one({"_id": 1})

    backup(services, tmp_path / "bk", **FAST)

    assert "added_later" in collection_names(services.db.database)
    assert bson.decode_all((tmp_path / "bk/database/added_later.bson").read_bytes()) == [{"_id": 1}]


# --- what a restore refuses --------------------------------------------------------------------


def test_restore_refuses_a_directory_without_backup_json(target, tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(RestoreError, match="has no backup.json: not a backup, or one that did not finish"):
        restore(target, tmp_path / "half")


def test_restore_refuses_a_target_that_is_not_empty_and_writes_nothing(services, filled, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    with pytest.raises(RestoreError, match=r"the target is not empty \(2 repositories, .* files in the content store\)"):
        restore(services, tmp_path / "bk")


def test_restore_with_force_replaces_the_database_of_an_install_that_is_not_empty(services, filled, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    target = empty_install(tmp_path / "other")
    from tests.publish.sample_content import make_repository, push_image
    from pulp_registry.publish import publish_repository

    extra = make_repository(target, "extra")
    push_image(target, extra, "v1", [b"extra"])
    publish_repository(target, extra["_id"])

    restore(target, tmp_path / "bk", force=True)

    assert sorted(repo["name"] for repo in target.db.repositories.find()) == ["base", "team/app"]
    assert not (Path(target.settings.published_dir) / "repositories" / "extra").exists()


def test_restore_into_an_install_whose_published_tree_is_format_1_upgrades_it_and_publishes_format_2(
        services, filled, target, tmp_path):
    from tests.republish.format1_tree import write_format1_tree

    backup(services, tmp_path / "bk", **FAST)
    published = Path(target.settings.published_dir)
    write_format1_tree(published, {"old/app": False})

    result = restore(target, tmp_path / "bk", force=True)

    assert sorted(result.published) == ["base", "team/app"] and not result.publish_failures
    assert (published / "FORMAT").read_text() == "pulp-registry-published 2\n"
    # old/app was served from the tree alone (no database knew it): it stays, catalogued by the upgrade.
    assert (published / "catalog" / "all").read_text() == "base\nold/app\nteam/app\n"
    for name in ("base", "team/app"):
        document = json.loads((published / "repositories" / name.replace("/", "%2F") / "current" /
                               "repository.json").read_text())
        assert document["format"] == 2
    segment = next((published / "journal").glob("*.log"))
    assert sorted(json.loads(line)["name"] for line in segment.read_text().splitlines()) == ["base", "team/app"]


def test_restore_checks_every_content_file_before_writing_anything(services, filled, target, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    digest, _size, path = (tmp_path / "bk" / "content.txt").read_text().splitlines()[0].split(" ")
    damaged = tmp_path / "bk" / path
    damaged.write_bytes(b"X" + damaged.read_bytes()[1:])

    with pytest.raises(RestoreError, match=f"content file of {digest} is damaged"):
        restore(target, tmp_path / "bk")

    assert target.db.repositories.count_documents({}) == 0
    assert next(iter(target.storage.iter_content()), None) is None


def test_restore_refuses_a_database_file_changed_since_the_backup(services, filled, target, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    with open(tmp_path / "bk/database/tags.bson", "ab") as out:
        out.write(bson.encode({"_id": "extra"}))

    with pytest.raises(RestoreError, match="database file database/tags.bson is missing or changed"):
        restore(target, tmp_path / "bk")


def test_restore_refuses_a_backup_of_another_format_version(services, filled, target, tmp_path):
    backup(services, tmp_path / "bk", **FAST)
    metadata_path = tmp_path / "bk" / METADATA_FILE
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps({**metadata, "format_version": 2}))

    with pytest.raises(RestoreError, match="is format version 2; this version of pulp-registry reads version 1"):
        restore(target, tmp_path / "bk")


def test_a_restore_cut_short_says_to_run_again_with_force_and_leaves_read_only_off(services, filled, target,
                                                                                 tmp_path, monkeypatch):
    backup(services, tmp_path / "bk", **FAST)
    written = []

    def full_after_two(source, digest, size=None, limit=None):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(digest)
        return real_put(source, digest, size)

    real_put = target.storage.put_stream
    monkeypatch.setattr(target.storage, "put_stream", full_after_two)
    with pytest.raises(RestoreError, match="No space left on device; the install is now partly restored: "
                                           "run the restore again with --force"):
        restore(target, tmp_path / "bk")
    assert maintenance.read_only_state(target.db) is None

    monkeypatch.setattr(target.storage, "put_stream", real_put)
    restore(target, tmp_path / "bk", force=True)
    assert target.db.repositories.count_documents({}) == 2
