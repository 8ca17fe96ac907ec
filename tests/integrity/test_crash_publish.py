"""A worker killed (SIGKILL) at any point of a publish: Crane keeps serving a whole version (issue 8, point 5).

The publish runs in a forked child over a real published tree and is killed
after a random delay, many times, while the repository grows between
attempts. After every kill a Crane that follows the tree and a Crane started
afresh serve the version ``current`` names, which is the last one a publish
completed (or the one the killed publish had already switched to), whole; and
a publish after the kills succeeds.
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

from pulp_registry import published_format as fmt
from pulp_registry.publish import publish_repository
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.integrity.test_publish_consistency import ErrorRecords, assert_served_whole

ATTEMPTS = 30
NAME = "crash/app"


def current_version(root: Path) -> str:
    return os.readlink(fmt.repository_dir(root, NAME) / fmt.CURRENT_LINK).split("/")[-1]


def version_tags(root: Path, version: str) -> dict[str, str]:
    path = fmt.repository_dir(root, NAME) / fmt.VERSIONS_DIR / version / fmt.REPOSITORY_JSON
    return json.loads(path.read_text())["tags"]


def published_blobs_that_do_not_match_their_names(root: Path) -> list[Path]:
    wrong = []
    for path in (root / fmt.BLOBS_DIR).rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
                wrong.append(path)
    return wrong


def test_a_publish_killed_at_random_points_leaves_the_last_complete_version_served(services):
    publisher = Publisher(services)
    repo = publisher.repository(NAME)
    for number in range(10):
        publisher.image(repo, f"base{number}", layers=[f"base {number} layer {n}".encode() for n in range(3)])
    started = time.monotonic()
    publish_repository(services, repo["_id"])
    duration = time.monotonic() - started
    root = publisher.published_dir
    following = CraneUnderTest(root)
    following_saw = (current_version(root), (root / fmt.GENERATION_FILE).read_text())
    records = ErrorRecords()
    logging.getLogger("crane.published").addHandler(records)
    fork = multiprocessing.get_context("fork")
    rng = random.Random(8)
    # Tag sets a publish may have written, in order; the one served must be one of them and never go back.
    tag_sets: list[dict[str, str]] = [version_tags(root, current_version(root))]
    served_index = 0
    outcomes = {"killed before switching": 0, "killed after switching": 0, "finished": 0}
    try:
        for attempt in range(ATTEMPTS):
            publisher.image(repo, f"new{attempt}", layers=[f"attempt {attempt} layer {n}".encode() for n in range(4)])
            tag_sets.append({tag["name"]: tag["manifest_digest"]
                             for tag in services.db.tags.find({"repo_id": repo["_id"]})})
            before = current_version(root)
            child = fork.Process(target=publish_repository, args=(services, repo["_id"]))
            child.start()
            time.sleep(rng.uniform(0, duration * 1.5))
            os.kill(child.pid, signal.SIGKILL)
            child.join()
            after = current_version(root)
            if child.exitcode == 0:
                outcomes["finished"] += 1
            elif after != before:
                outcomes["killed after switching"] += 1
            else:
                outcomes["killed before switching"] += 1

            tags = version_tags(root, after)
            assert tags in tag_sets[served_index:], f"attempt {attempt}: {after} is no version a publish wrote"
            served_index = tag_sets.index(tags, served_index)
            following.tick()
            following.get("/v2/")
            generation = (root / fmt.GENERATION_FILE).read_text()
            loaded = following.tree.repository(NAME)
            if loaded.version != after:
                # Killed between the switch and the bump of generation: a running Crane sees the new
                # version at the next bump and serves the one it has until then.
                assert (loaded.version, generation) == following_saw, (attempt, loaded.version, after)
            following_saw = (loaded.version, generation)
            assert_served_whole(following, NAME)
            fresh = CraneUnderTest(root)
            assert fresh.tree.repository(NAME).version == after, (attempt, child.exitcode)
            assert dict(fresh.tree.repository(NAME).tags) == tags
            assert_served_whole(fresh, NAME)
        assert not records.messages, records.messages
    finally:
        logging.getLogger("crane.published").removeHandler(records)

    assert outcomes["killed before switching"] >= 3, outcomes
    assert not published_blobs_that_do_not_match_their_names(root)
    result = publish_repository(services, repo["_id"])
    following.tick()
    following.get("/v2/")
    assert following.tree.repository(NAME).version == result["version"]
    assert dict(following.tree.repository(NAME).tags) == tag_sets[-1]
    assert_served_whole(following, NAME)
    repo_dir = fmt.repository_dir(root, NAME)
    assert sorted(entry.name for entry in repo_dir.iterdir()) == [fmt.CURRENT_LINK, fmt.VERSIONS_DIR]
    leftovers = [path for path in (root / fmt.BLOBS_DIR).rglob(".*")]
    print(f"\n{outcomes}; {len(leftovers)} temporary files left in blobs/ for the clean-up")


def test_every_directory_and_link_a_publish_creates_is_fsynced_into_its_parent(services, monkeypatch):
    from pulp_registry import durable, publish

    fsynced: list[Path] = []
    real_fsync_dir = durable.fsync_dir

    def recording_fsync_dir(path: Path) -> None:
        fsynced.append(Path(path))
        real_fsync_dir(path)

    monkeypatch.setattr(publish, "fsync_dir", recording_fsync_dir)
    monkeypatch.setattr(durable, "fsync_dir", recording_fsync_dir)   # make_dirs' own calls
    publisher = Publisher(services)
    repo = publisher.repository(NAME)
    image = publisher.image(repo, "latest")
    publish_repository(services, repo["_id"])

    root = publisher.published_dir
    created = [root, *(path for path in root.rglob("*") if path.is_dir() and not path.is_symlink())]
    assert {directory.parent for directory in created} <= set(fsynced)
    # The published blobs and manifest are durable in their directories, the version in its, before the switch.
    assert fmt.blob_path(root, image.digest).parent in fsynced
    repo_dir = fmt.repository_dir(root, NAME)
    assert fsynced.index(repo_dir) > fsynced.index(fmt.blob_path(root, image.config_digest).parent)
