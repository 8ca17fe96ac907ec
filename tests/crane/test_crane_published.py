"""Following the published tree: new publishes without a restart, removals, never a half-published version."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crane.app import create_app
from crane.config import CraneSettings
from crane.published import PublishedFormatError
from pulp_registry import published_format as fmt
from pulp_registry.published_journal import Change, append_change, journal_lock
from pulp_registry.published_tags import TAGS_DIR
from tests.crane.conftest import error_code


def tags_of(crane, name: str) -> list[str]:
    return json.loads(crane.get(f"/v2/{name}/tags/list").data)["tags"]


def test_a_republish_is_served_once_the_poll_interval_has_passed_without_a_restart(publisher, crane):
    repo = publisher.repository("my/app")
    first = publisher.image(repo, "v1")
    publisher.publish(repo)
    crane.tick()
    assert tags_of(crane, "my/app") == ["v1"]

    second = publisher.image(repo, "v2")
    publisher.untag(repo, "v1")
    publisher.publish(repo)
    assert tags_of(crane, "my/app") == ["v1"]          # within the poll interval: the version it had
    crane.tick()
    assert tags_of(crane, "my/app") == ["v2"]
    assert crane.get("/v2/my/app/manifests/v2").data == second.raw
    assert error_code(crane.get("/v2/my/app/manifests/v1")) == "MANIFEST_UNKNOWN"
    assert crane.get(f"/v2/my/app/manifests/{first.digest}").data == first.raw   # still in the repository


def test_only_repositories_whose_version_changed_are_reloaded(publisher, crane):
    stable, moving = publisher.repository("stable/app"), publisher.repository("moving/app")
    publisher.image(stable, "latest")
    publisher.image(moving, "v1")
    publisher.publish(stable)
    publisher.publish(moving)
    crane.tick()
    crane.get("/v2/")
    stable_before = crane.tree.repository("stable/app")
    moving_before = crane.tree.repository("moving/app")

    publisher.image(moving, "v2")
    publisher.publish(moving)
    crane.tick()
    crane.get("/v2/")
    assert crane.tree.repository("stable/app") is stable_before
    assert crane.tree.repository("moving/app") is not moving_before
    assert moving_before.sorted_tags == ("v1",)      # what a request in flight holds is unchanged


def test_a_removed_repository_disappears(publisher, crane):
    repo = publisher.repository("gone/app")
    publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    assert crane.get("/v2/gone/app/manifests/latest").status_code == 200
    publisher.unpublish(repo)
    crane.tick()
    response = crane.get("/v2/gone/app/manifests/latest")
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"
    assert json.loads(crane.get("/v2/_catalog").data)["repositories"] == []


def test_crane_started_before_the_tree_exists_serves_nothing_then_follows_it(publisher, crane):
    assert not publisher.published_dir.exists()
    assert json.loads(crane.get("/v2/_catalog").data) == {"repositories": []}
    repo = publisher.repository("late/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    assert crane.get("/v2/late/app/manifests/latest").data == image.raw


def test_a_version_that_is_not_switched_to_is_never_served(publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    repo_dir = fmt.repository_dir(publisher.published_dir, "my/app")
    half = repo_dir / fmt.VERSIONS_DIR / "99991231T000000.000000Z-half"
    half.mkdir()
    (half / fmt.REPOSITORY_JSON).write_text('{"format": 2, "name": "my/app", "tags": {"lat')
    crane.tick()
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw


def test_a_broken_version_keeps_the_last_good_one_served(publisher, crane, caplog):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    assert crane.get("/v2/my/app/manifests/latest").status_code == 200
    assert crane.get(f"/v2/my/app/manifests/{image.digest}").status_code == 200   # by digest: held whole
    repo_dir = fmt.repository_dir(publisher.published_dir, "my/app")
    broken = repo_dir / fmt.VERSIONS_DIR / "broken"
    broken.mkdir()
    (broken / fmt.REPOSITORY_JSON).write_text("not json")
    os.symlink(f"{fmt.VERSIONS_DIR}/broken", repo_dir / "current.new")
    os.replace(repo_dir / "current.new", repo_dir / fmt.CURRENT_LINK)
    with journal_lock(publisher.published_dir):   # as a publisher that skipped its checks would
        append_change(publisher.published_dir, Change("my/app", "broken", False))
    crane.tick()
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw
    assert "cannot load version" in caplog.text
    caplog.clear()
    for _ in range(3):   # polls and their link checks do not try the broken version again
        crane.tick()
        assert crane.get("/v2/my/app/manifests/latest").data == image.raw
    assert "cannot load version" not in caplog.text


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_not_served(publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    path = fmt.blob_path(publisher.published_dir, image.digest)
    path.unlink()                       # a hard link to the content store: replace, do not write through
    path.write_bytes(image.raw + b" ")
    _tamper_inline_content(publisher.published_dir, "my/app", image.digest)
    response = crane.get("/v2/my/app/manifests/latest")
    assert response.status_code == 404 and error_code(response) == "MANIFEST_UNKNOWN"


def test_a_manifest_carried_in_repository_json_is_checked_against_its_digest(publisher, crane, caplog):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    repo_dir = fmt.repository_dir(publisher.published_dir, "my/app")
    listed = fmt.read_version(repo_dir, fmt.current_version(repo_dir))["manifests"][image.digest]
    assert listed["content"].encode() == image.raw   # small manifests travel in repository.json
    _tamper_inline_content(publisher.published_dir, "my/app", image.digest)
    crane.tick()
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw   # from blobs/, verified
    assert "does not match its digest" in caplog.text


def _tamper_inline_content(root: Path, name: str, digest: str) -> None:
    """Change the bytes ``repository.json`` and the tag documents carry for ``digest`` (new files: the old
    ones may be open)."""
    version_dir = fmt.repository_dir(root, name) / fmt.CURRENT_LINK
    for path in [version_dir / fmt.REPOSITORY_JSON, *(version_dir / TAGS_DIR).iterdir()]:
        document = json.loads(path.read_bytes())
        if digest in document["manifests"]:
            document["manifests"][digest]["content"] += " "
            path.unlink()
            path.write_bytes(fmt.dump_repository(document))


def test_an_unknown_format_refuses_to_start_with_a_clear_message(tmp_path: Path):
    (tmp_path / fmt.FORMAT_FILE).write_text("pulp-registry-published 3\n")
    with pytest.raises(PublishedFormatError, match="pulp-registry-published 3.*Upgrade Crane"):
        create_app(CraneSettings(data_dir=str(tmp_path)))


def test_repository_json_of_format_1_is_served_while_the_tree_is_republished(publisher, crane):
    """``republish --all`` turns the tree to format 2 first; versions it has not reached yet are format 1."""
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    current = fmt.repository_dir(publisher.published_dir, "my/app") / fmt.CURRENT_LINK / fmt.REPOSITORY_JSON
    document = json.loads(current.read_text())
    document["format"] = 1
    current.write_text(json.dumps(document))
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw
