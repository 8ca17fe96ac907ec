"""A worker killed (SIGKILL) at any point of a publish: Crane keeps serving a whole version (issue 8, point 5).

The publish runs in a forked child over a real published tree and is killed
after a random delay, many times, while the repository grows between
attempts. After every kill the tree's ``current`` names the last version a
publish completed (or the one the killed publish had already switched to),
whole; the journal holds whole lines, but for a line cut short at its end; a
Crane that follows the tree and a Crane started afresh serve whole versions;
and the publish after the kills repairs the journal and is served everywhere.
A publisher killed exactly between the switch and its journal line, or in the
middle of the line, is checked on its own.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

from pulp_registry import published_format as fmt, publish_switch
from pulp_registry.publish import publish_repository
from pulp_registry.published_journal import read_head, segment_path
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.integrity.served import ErrorRecords, assert_served_whole, served_tags

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


def journal(root: Path) -> tuple[list[dict[str, Any]], bytes]:
    """The whole lines of the journal, and what follows the last newline (a line a killed writer cut short)."""
    data = b"".join(path.read_bytes() for path in sorted((root / fmt.JOURNAL_DIR).glob("*.log")))
    complete, _, partial = data.rpartition(b"\n")
    return [json.loads(line) for line in complete.splitlines()], partial


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
    fork = multiprocessing.get_context("fork")
    rng = random.Random(8)
    # Tag sets a publish may have written, in order; the one served must be one of them and never go back.
    tag_sets: list[dict[str, str]] = [version_tags(root, current_version(root))]
    served_index = following_index = 0
    outcomes = {"killed before switching": 0, "killed after switching": 0, "finished": 0}
    with ErrorRecords() as records:
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
            lines, _partial = journal(root)
            assert all(line["name"] == NAME and line["version"] for line in lines), lines
            # A Crane that follows the tree serves a whole version a publish wrote, never an older one than before.
            following.tick()
            seen = served_tags(following, NAME)
            assert seen in tag_sets[following_index:served_index + 1], (attempt, seen)
            following_index = tag_sets.index(seen, following_index)
            assert_served_whole(following, NAME)
            fresh = CraneUnderTest(root)
            assert served_tags(fresh, NAME) == tags, (attempt, child.exitcode)
            assert_served_whole(fresh, NAME)
        assert not records.messages, records.messages

    assert outcomes["killed before switching"] >= 3, outcomes
    assert not published_blobs_that_do_not_match_their_names(root)
    result = publish_repository(services, repo["_id"])
    lines, partial = journal(root)
    assert partial == b"" and lines[-1]["version"] == result["version"]
    following.tick()
    assert served_tags(following, NAME) == tag_sets[-1]
    assert_served_whole(following, NAME)
    repo_dir = fmt.repository_dir(root, NAME)
    assert sorted(entry.name for entry in repo_dir.iterdir()) == [fmt.CURRENT_LINK, fmt.VERSIONS_DIR]
    leftovers = [path for path in (root / fmt.BLOBS_DIR).rglob(".*")]
    print(f"\n{outcomes}; {len(leftovers)} temporary files left in blobs/ for the clean-up")


def _publish_killed_before_the_journal(services: Any, repo_id: str) -> None:
    """A publish whose worker dies right after the ``current`` rename, before the journal line."""
    def die(*_args: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    publish_switch.record_change = die
    publish_repository(services, repo_id)


def test_a_publisher_killed_between_the_switch_and_its_journal_line_is_repaired_by_the_next_publish(services):
    publisher = Publisher(services)
    other = publisher.repository("other/app")
    publisher.image(other, "v1")
    publisher.publish(other)
    repo = publisher.repository(NAME)
    first = publisher.image(repo, "first")
    root = publisher.published_dir
    following = CraneUnderTest(root)
    assert served_tags(following, NAME) is None

    child = multiprocessing.get_context("fork").Process(target=_publish_killed_before_the_journal,
                                                         args=(services, repo["_id"]))
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL
    assert version_tags(root, current_version(root)) == {"first": first.digest}   # switched, not journaled
    assert [line["name"] for line in journal(root)[0]] == ["other/app"]
    assert (root / "catalog" / "all").read_text() == "other/app\n"
    assert served_tags(CraneUnderTest(root), NAME) == {"first": first.digest}   # a fresh Crane reads `current`

    second = publisher.image(repo, "second")
    result = publisher.publish(repo)

    lines, partial = journal(root)
    assert partial == b""
    assert lines[-1] == {"name": NAME, "version": result["version"], "protected": False, "catalog": True}
    assert (root / "catalog" / "all").read_text() == f"{NAME}\nother/app\n"
    following.tick()
    assert served_tags(following, NAME) == {"first": first.digest, "second": second.digest}


def test_a_journal_line_cut_short_by_a_killed_writer_is_cut_off_by_the_next_append(services):
    publisher = Publisher(services)
    repo = publisher.repository(NAME)
    publisher.image(repo, "v1")
    first = publisher.publish(repo)
    root = publisher.published_dir
    following = CraneUnderTest(root)
    assert served_tags(following, NAME) is not None
    segment, _tree_id = read_head(root)
    with open(segment_path(root, segment), "ab") as tail:   # what a writer killed mid-append leaves
        tail.write(b'{"name":"crash/app","version":"2026')
    following.tick()
    assert served_tags(following, NAME) is not None         # a reader takes whole lines only

    image = publisher.image(repo, "v2")
    result = publisher.publish(repo)

    lines, partial = journal(root)
    assert partial == b""
    assert [line["version"] for line in lines] == [first["version"], result["version"]]
    following.tick()
    assert served_tags(following, NAME)["v2"] == image.digest


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
