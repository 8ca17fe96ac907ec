"""Publishes racing pushes: every version Crane is handed is whole (issue 8, point 4).

One thread pushes and tags images and indexes in a tight loop through the
content functions while the test publishes over and over; after every publish a
Crane must serve exactly the version just published, seen by its tags (it
refuses a version whose tags or index children point at unlisted manifests),
and every tag it serves must resolve to a manifest whose config, layers and
children it serves too.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from pulp_registry import published_format as fmt
from pulp_registry.publish import prepare_published_tree, publish_repository
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.integrity.served import ErrorRecords, assert_served_whole, served_tags

RACE_SECONDS = 3.0


def push_in_a_loop(publisher: Publisher, repo: dict[str, Any], stop: threading.Event,
                   failures: list[BaseException]) -> int:
    pushes = 0
    try:
        while not stop.is_set():
            amd = publisher.image(repo, f"t{pushes % 4}", layers=[f"amd64 layer {pushes}".encode()])
            arm = publisher.image(repo, None, layers=[f"arm64 layer {pushes}".encode()], architecture="arm64")
            publisher.index(repo, f"multi{pushes % 2}", [(amd, "amd64"), (arm, "arm64")])
            pushes += 1
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)
    return pushes


def version_tags(publisher: Publisher, name: str, version: str) -> dict[str, str]:
    path = fmt.repository_dir(publisher.published_dir, name) / fmt.VERSIONS_DIR / version / fmt.REPOSITORY_JSON
    return json.loads(path.read_text())["tags"]


def test_every_publish_racing_pushes_is_loaded_by_crane_and_served_whole(services):
    publisher = Publisher(services)
    repo = publisher.repository("race/app")
    seed = publisher.image(repo, "seed")
    prepare_published_tree(publisher.published_dir)   # as `pulp-registry api` does at start
    crane = CraneUnderTest(publisher.published_dir)
    records = ErrorRecords()
    logging.getLogger("crane").addHandler(records)
    stop, failures = threading.Event(), []
    pusher = threading.Thread(target=push_in_a_loop, args=(publisher, repo, stop, failures), daemon=True)
    refused: list[str] = []
    publishes = 0
    pusher.start()
    try:
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline and not failures:
            result = publish_repository(services, repo["_id"])
            publishes += 1
            crane.tick()
            crane.get("/v2/")
            # The tags say which version is served (every push between two publishes moves some).
            if served_tags(crane, "race/app") != version_tags(publisher, "race/app", result["version"]):
                refused.append(f"publish {publishes} ({result['version']}): Crane serves another version; "
                               f"log: {records.messages[-1:]}")
                continue
            assert_served_whole(crane, "race/app")
    finally:
        stop.set()
        pusher.join(timeout=30)
        logging.getLogger("crane").removeHandler(records)
    assert not failures, failures
    assert publishes >= 5
    assert not refused, f"{len(refused)} of {publishes} publishes were refused: {refused[:3]}"
    assert not records.messages
    # What the last pushes left is published whole too, and the seed is still there.
    publish_repository(services, repo["_id"])
    crane.tick()
    assert crane.get(f"/v2/race/app/manifests/{seed.digest}").status_code == 200
    assert_served_whole(crane, "race/app")
