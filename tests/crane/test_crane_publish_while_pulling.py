"""Pulling in a loop from Crane under gunicorn while the repository is republished: no failed request.

One thread republishes (new images pushed, new tags, a tag moved; no tag is
ever removed), two threads pull over fresh connections (so both gunicorn
workers serve): tags list, every listed tag's manifest, HEAD and GET of its
config and layers, each checked against its digest. Bounded in count and time.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from pulp_registry import content
from tests.crane.conftest import ALL_MANIFEST_TYPES
from tests.crane.content import Publisher
from tests.crane.live import running_crane
from tests.servers import poll

REPUBLISHES = 12
PULLERS = 2
MAX_ROUNDS = 400
DEADLINE_S = 120.0


@pytest.fixture
def live_crane(services, tmp_path: Path) -> Iterator[str]:
    """``crane`` with 2 workers polling every 0.2 s; yields ``http://127.0.0.1:PORT``."""
    with running_crane(services.settings.published_dir, tmp_path / "crane.log") as host:
        yield f"http://{host}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Puller:
    """Pulls everything the tags list names, round after round; records every failed request."""

    def __init__(self, base: str, name: str, stop: threading.Event) -> None:
        self.base, self.name, self.stop = base, name, stop
        self.failures: list[str] = []
        self.rounds = 0
        self.requests = 0
        self.tag_sets: set[tuple[str, ...]] = set()

    def get(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        self.requests += 1
        try:
            response = requests.request(method, self.base + path, timeout=10, **kwargs)
        except requests.RequestException as exc:
            self.failures.append(f"{method} {path}: {exc!r}")
            return None
        if response.status_code != 200:
            self.failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return None
        return response

    def blob(self, digest: str, size: int) -> None:
        path = f"/v2/{self.name}/blobs/{digest}"
        head = self.get("HEAD", path)
        if head is not None and head.headers.get("Content-Length") != str(size):
            self.failures.append(f"HEAD {path}: Content-Length {head.headers.get('Content-Length')} != {size}")
        body = self.get("GET", path)
        if body is not None and sha256(body.content) != digest:
            self.failures.append(f"GET {path}: bytes do not match the digest")

    def one_round(self) -> None:
        listing = self.get("GET", f"/v2/{self.name}/tags/list")
        if listing is None:
            return
        tags = listing.json()["tags"]
        self.tag_sets.add(tuple(tags))
        for tag in tags:
            response = self.get("GET", f"/v2/{self.name}/manifests/{tag}", headers={"Accept": ALL_MANIFEST_TYPES})
            if response is None:
                continue
            digest = response.headers.get("Docker-Content-Digest")
            if sha256(response.content) != digest:
                self.failures.append(f"GET manifest {tag}: body does not match Docker-Content-Digest {digest}")
                continue
            manifest = json.loads(response.content)
            for descriptor in [manifest["config"], *manifest["layers"]]:
                self.blob(descriptor["digest"], descriptor["size"])

    def run(self, deadline: float) -> None:
        while self.rounds < MAX_ROUNDS and time.monotonic() < deadline:
            self.one_round()
            self.rounds += 1
            if self.stop.is_set():
                self.one_round()      # one more round once the last publish is served
                self.rounds += 1
                return


def test_a_miss_catches_up_with_a_publish_before_the_poll_interval_has_passed(publisher, crane):
    """What another worker already serves is never a 404 here: a miss re-reads ``generation`` first."""
    repo = publisher.repository("my/app")
    publisher.image(repo, "v1")
    publisher.publish(repo)
    crane.tick()
    assert crane.get("/v2/my/app/tags/list").status_code == 200
    second = publisher.image(repo, "v2", layers=[b"only in the second version"])
    publisher.publish(repo)
    other = publisher.repository("other/app")
    publisher.image(other, "latest")
    publisher.publish(other)
    # No tick: a listing still answers the version this process has...
    assert json.loads(crane.get("/v2/my/app/tags/list").data)["tags"] == ["v1"]
    # ...but what a newer version holds is found instead of a 404.
    assert crane.get(f"/v2/my/app/blobs/{second.layers[0][0]}").data == b"only in the second version"
    assert crane.get("/v2/my/app/manifests/v2").data == second.raw
    assert crane.get("/v2/other/app/tags/list").status_code == 200
    assert json.loads(crane.get("/v2/my/app/tags/list").data)["tags"] == ["v1", "v2"]
    # A real miss stays a miss, after one look at ``generation``.
    assert crane.get("/v2/my/app/manifests/v3").status_code == 404
    assert crane.get("/v2/nothing/here/tags/list").status_code == 404


@pytest.mark.e2e
def test_pulls_never_fail_while_the_repository_is_republished_with_changing_tags(services, live_crane):
    publisher = Publisher(services)
    repo = publisher.repository("live/app")
    for number in range(3):
        publisher.image(repo, f"v{number}", layers=[f"initial layer {number}".encode(), os.urandom(20_000)])
    content.set_tag(services.db, repo["_id"], "moving", publisher.image(repo, "base").digest)
    publisher.publish(repo)
    poll(lambda: requests.get(f"{live_crane}/v2/live/app/tags/list", timeout=5).status_code == 200,
         20, "first publish served")

    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    pullers = [Puller(live_crane, "live/app", stop) for _ in range(PULLERS)]
    threads = [threading.Thread(target=puller.run, args=(deadline,), daemon=True) for puller in pullers]
    for thread in threads:
        thread.start()
    published_tags = {"v0", "v1", "v2", "base", "moving"}
    try:
        for number in range(REPUBLISHES):
            rounds_before = sum(puller.rounds for puller in pullers)
            image = publisher.image(repo, f"new{number}", layers=[f"republish {number}".encode()])
            content.set_tag(services.db, repo["_id"], "moving", image.digest)      # a tag moves
            content.set_tag(services.db, repo["_id"], f"alias{number}", image.digest)
            published_tags.update({f"new{number}", f"alias{number}"})
            publisher.publish(repo)
            # Let the pullers work against this version before the next publish (bounded wait).
            poll(lambda: sum(p.rounds for p in pullers) > rounds_before or time.monotonic() > deadline,
                 DEADLINE_S, "a pull round during the republishes", interval_s=0.02)
        expected = sorted(published_tags)
        poll(lambda: all(requests.get(f"{live_crane}/v2/live/app/tags/list", timeout=5).json()["tags"] == expected
                         for _ in range(6)), 20, "last publish served by every worker")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "pullers did not stop"
    failures = [failure for puller in pullers for failure in puller.failures]
    assert failures == [], f"{len(failures)} failed requests:\n" + "\n".join(failures[:20])
    total = sum(puller.requests for puller in pullers)
    seen = set().union(*(puller.tag_sets for puller in pullers))
    print(f"{total} requests, {sum(p.rounds for p in pullers)} rounds, {len(seen)} tag sets seen")
    assert total > 100
    assert len(seen) > 1, "the pullers never saw a republish"
    assert tuple(sorted(published_tags)) in seen
