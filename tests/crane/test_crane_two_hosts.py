"""Two Crane processes on one published tree while a Celery worker publishes: no pull fails.

As several Crane hosts on one shared filesystem would: each ``crane`` (gunicorn,
2 workers) reads the tree on its own and learns of publishes from the journal.
A real Celery worker takes publish tasks from redis and republishes several
repositories (new tags, a tag that moves, a new repository now and then),
while pullers send each step of a pull to the other Crane: the tag list from
one, the manifest from the other, the blobs from both. A client that got a
manifest from a Crane that already serves a new version must find its blobs on
the other (the re-check before a 404). At the end both serve the last version
of every repository and list every repository in ``_catalog``.
"""
from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from pulp_registry import content
from tests.crane.live import running_crane
from tests.crane.test_crane_publish_while_pulling import Puller
from tests.integration.conftest import broker_services, broker_settings, celery_worker  # noqa: F401 - fixtures
from tests.integration.conftest import wait_for_task
from tests.integration.test_worker_tasks import submit_publish
from tests.publish.sample_content import make_repository, push_image
from tests.servers import poll

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPOSITORIES = 4
ROUNDS = 8
DEADLINE_S = 150.0


@pytest.fixture
def two_cranes(broker_services, tmp_path: Path) -> Iterator[list[str]]:
    published = broker_services.settings.published_dir
    with running_crane(published, tmp_path / "crane-a.log") as first, \
            running_crane(published, tmp_path / "crane-b.log") as second:
        yield [f"http://{first}", f"http://{second}"]


class CrossPuller(Puller):
    """``Puller``'s checks over several repositories, each request sent to the next Crane in turn."""

    #: Read by ``Puller.get`` for every request: the next Crane (``Puller.__init__``'s value is ignored).
    base = property(lambda self: next(self._bases), lambda self, _value: None)

    def __init__(self, bases: list[str], names: list[str], stop: threading.Event) -> None:
        self._bases = itertools.cycle(bases)
        super().__init__(bases[0], names[0], stop)
        self.names = names

    def run(self, deadline: float) -> None:
        while time.monotonic() < deadline and not self.stop.is_set():
            for name in list(self.names):
                self.name = name
                self.one_round()
            self.rounds += 1


def served_tags(base: str, name: str) -> list[str] | None:
    response = requests.get(f"{base}/v2/{name}/tags/list", timeout=5)
    return response.json()["tags"] if response.status_code == 200 else None


def test_two_cranes_on_one_tree_serve_every_publish_of_a_worker_without_a_failed_pull(
        broker_services, celery_worker, two_cranes):
    services = broker_services
    repos, tags = [], {}
    for number in range(REPOSITORIES):
        repo = make_repository(services, f"hosts/app{number}")
        push_image(services, repo, "v0", [f"first layer of {number}".encode()])
        repos.append(repo)
        tags[repo["name"]] = {"v0"}
        assert wait_for_task(services, submit_publish(services, repo["_id"]))["state"] == "finished"
    names = [repo["name"] for repo in repos]
    for base in two_cranes:
        poll(lambda base=base: all(served_tags(base, name) == ["v0"] for name in names), 20, f"{base} serving")

    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE_S
    pullers = [CrossPuller(two_cranes, names, stop), CrossPuller(list(reversed(two_cranes)), names, stop)]
    threads = [threading.Thread(target=puller.run, args=(deadline,), daemon=True) for puller in pullers]
    for thread in threads:
        thread.start()
    try:
        for round_number in range(1, ROUNDS + 1):
            task_ids = []
            for repo in repos:
                digest, _ = push_image(services, repo, f"v{round_number}", [f"{repo['name']} {round_number}".encode()])
                content.set_tag(services.db, repo["_id"], "latest", digest)   # a tag that moves every round
                tags[repo["name"]] |= {f"v{round_number}", "latest"}
                task_ids.append(submit_publish(services, repo["_id"]))
            if round_number % 3 == 0:   # a repository appears while pulls go on
                repo = make_repository(services, f"hosts/new{round_number}")
                push_image(services, repo, "v0", [f"new repository {round_number}".encode()])
                repos.append(repo)
                tags[repo["name"]] = {"v0"}
                task_ids.append(submit_publish(services, repo["_id"]))
            for task_id in task_ids:
                assert wait_for_task(services, task_id)["state"] == "finished"
            names[:] = [repo["name"] for repo in repos]
            rounds_before = sum(puller.rounds for puller in pullers)
            poll(lambda: sum(p.rounds for p in pullers) > rounds_before + 1 or time.monotonic() > deadline,
                 DEADLINE_S, "pull rounds against this version", interval_s=0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "pullers did not stop"
    failures = [failure for puller in pullers for failure in puller.failures]
    assert failures == [], f"{len(failures)} failed requests:\n" + "\n".join(failures[:20])
    assert sum(puller.requests for puller in pullers) > 200

    for base in two_cranes:
        for name, expected in tags.items():
            assert served_tags(base, name) == sorted(expected), (base, name)
        catalog = requests.get(f"{base}/v2/_catalog", timeout=5).json()["repositories"]
        assert catalog == sorted(tags), base
