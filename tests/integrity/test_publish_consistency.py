"""Publishes racing pushes: every version Crane is handed is whole (issue 8, point 4).

One thread pushes and tags images and indexes in a tight loop through the
content functions while the test publishes over and over; after every publish a
Crane ``PublishedTree`` reloads and must load exactly the version just
published (it refuses a version whose tags or index children point at unlisted
manifests), and every tag it serves must resolve to a manifest whose config,
layers and children it serves too.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from pulp_registry import oci
from pulp_registry.publish import publish_repository
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher

RACE_SECONDS = 3.0


class ErrorRecords(logging.Handler):
    """Warnings and errors Crane's reader logs (a refused version is logged as an error)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


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


def assert_served_whole(crane: CraneUnderTest, name: str) -> None:
    """Every tag resolves to a manifest Crane serves, with its blobs and children."""
    repository = crane.tree.repository(name)
    for tag, digest in repository.tags.items():
        response = crane.get(f"/v2/{name}/manifests/{tag}")
        assert response.status_code == 200, (tag, digest, response.data)
        manifest = json.loads(response.data)
        children = [child["digest"] for child in manifest.get("manifests", [])]
        for child in children:
            assert crane.head(f"/v2/{name}/manifests/{child}").status_code == 200, (tag, child)
            child_manifest = json.loads(crane.get(f"/v2/{name}/manifests/{child}").data)
            assert_blobs_served(crane, name, child_manifest)
        assert_blobs_served(crane, name, manifest)


def assert_blobs_served(crane: CraneUnderTest, name: str, manifest: dict[str, Any]) -> None:
    descriptors = ([manifest["config"]] if "config" in manifest else []) + manifest.get("layers", [])
    for descriptor in descriptors:
        if descriptor["mediaType"] in oci.FOREIGN_LAYER_MEDIA_TYPES:
            continue
        response = crane.head(f"/v2/{name}/blobs/{descriptor['digest']}")
        assert response.status_code == 200, (descriptor, response.status_code)


def test_every_publish_racing_pushes_is_loaded_by_crane_and_served_whole(services):
    publisher = Publisher(services)
    repo = publisher.repository("race/app")
    seed = publisher.image(repo, "seed")
    crane = CraneUnderTest(publisher.published_dir)
    records = ErrorRecords()
    logging.getLogger("crane.published").addHandler(records)
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
            loaded = crane.tree.repository("race/app")
            if loaded is None or loaded.version != result["version"]:
                refused.append(f"publish {publishes} ({result['version']}): Crane serves "
                               f"{loaded.version if loaded else 'nothing'}; log: {records.messages[-1:]}")
                continue
            assert_served_whole(crane, "race/app")
    finally:
        stop.set()
        pusher.join(timeout=30)
        logging.getLogger("crane.published").removeHandler(records)
    assert not failures, failures
    assert publishes >= 5
    assert not refused, f"{len(refused)} of {publishes} publishes were refused: {refused[:3]}"
    assert not records.messages
    # What the last pushes left is published whole too, and the seed is still there.
    publish_repository(services, repo["_id"])
    crane.tick()
    assert crane.get(f"/v2/race/app/manifests/{seed.digest}").status_code == 200
    assert_served_whole(crane, "race/app")
