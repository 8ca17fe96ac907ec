"""A real Celery worker takes tasks from a real redis broker and records them in MongoDB."""
from __future__ import annotations

import collections
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import current_task
from celery.signals import task_postrun

from pulp_registry import published_format as fmt, task_runner, tasks
from pulp_registry.app import create_app
from pulp_registry.db import utcnow
from pulp_registry.storage import FilesystemStorage
from tests.integration.conftest import wait_for_task
from tests.publish.sample_content import make_repository, push_image
from workers.embedded import start_embedded_worker

pytestmark = pytest.mark.integration

SLOW_ACCESS_SECONDS = 0.2


class ProbedStorage(FilesystemStorage):
    """Content storage that is slow to hand out files and records which publish tasks read it at once.

    ``local_path`` is what publish calls for every blob it links; the Celery task
    running in this thread says which repository and task is publishing.
    """

    def __init__(self, root: str, db: Any, meet_at_barrier: set[str] = frozenset(),
                 hold_first_reader_until: threading.Event | None = None) -> None:
        super().__init__(root)
        self.db = db
        self.hold_first_reader_until = hold_first_reader_until
        self.meet_at_barrier = meet_at_barrier
        self.barrier = threading.Barrier(max(len(meet_at_barrier), 1), timeout=30)
        self._guard = threading.Lock()
        self.active: collections.Counter[str] = collections.Counter()
        self.most_at_once: collections.Counter[str] = collections.Counter()
        self.lock_held_by_reader: list[bool] = []
        self._met: set[str] = set()

    def local_path(self, digest: str) -> Path | None:
        task = current_task
        request_kwargs = (task.request.kwargs or {}) if task else {}
        repo_id, task_id = request_kwargs.get("repo_id"), request_kwargs.get("task_id")
        if repo_id is None:
            return super().local_path(digest)
        with self._guard:
            self.active[repo_id] += 1
            self.most_at_once[repo_id] = max(self.most_at_once[repo_id], self.active[repo_id])
            first_access = task_id not in self._met
            first_reader = not self._met
            self._met.add(task_id)
        try:
            lock = self.db.locks.find_one({"_id": tasks.repository_resource(repo_id)})
            self.lock_held_by_reader.append(lock is not None and lock["task_id"] == task_id)
            if first_reader and self.hold_first_reader_until is not None:
                assert self.hold_first_reader_until.wait(30), "the gate of the first publish never opened"
            if first_access and repo_id in self.meet_at_barrier:
                self.barrier.wait()  # only passes if the other repository's publish is running too
            time.sleep(SLOW_ACCESS_SECONDS)
        finally:
            with self._guard:
                self.active[repo_id] -= 1
        return super().local_path(digest)


def published_document(services: Any, name: str) -> dict[str, Any]:
    current = fmt.repository_dir(Path(services.settings.published_dir), name) / fmt.CURRENT_LINK
    return json.loads((current / fmt.REPOSITORY_JSON).read_text())


def submit_publish(services: Any, repo_id: str) -> str:
    return tasks.submit(services, "publish", [tasks.repository_resource(repo_id)], repo_id=repo_id)["_id"]


def test_a_publish_submitted_as_a_task_is_run_by_the_worker_from_redis(broker_services, celery_worker):
    repo = make_repository(broker_services, "team/app")
    digest, raw = push_image(broker_services, repo, "latest", [b"layer from redis test"])

    task = wait_for_task(broker_services, submit_publish(broker_services, repo["_id"]))

    assert task["state"] == "finished", task["error"]
    assert task["worker"].startswith(celery_worker.hostname + "/")  # node name, then this process
    assert task["result"]["tags"] == 1 and task["result"]["manifests"] == 1 and task["result"]["blobs"] == 2
    assert task["progress"]["blobs"] == {"done": 2, "total": 2}
    document = published_document(broker_services, "team/app")
    assert document["tags"] == {"latest": digest}
    published_root = Path(broker_services.settings.published_dir)
    assert fmt.blob_path(published_root, digest).read_bytes() == raw
    assert broker_services.db.locks.count_documents({}) == 0


def test_a_publish_spawned_through_the_rest_api_finishes_and_is_shown_there(broker_services, celery_worker, auth):
    repo = make_repository(broker_services, "rest/app")
    digest, _ = push_image(broker_services, repo, "v1", [b"layer pushed before the REST publish"])
    client = create_app(broker_services).test_client()

    response = client.post(f"/pulp/api/v2/repositories/{repo['_id']}/actions/publish/", headers=auth)

    assert response.status_code == 202, response.get_data(as_text=True)
    href = response.get_json()["spawned_tasks"][0]["_href"]
    task_id = response.get_json()["spawned_tasks"][0]["task_id"]
    wait_for_task(broker_services, task_id)
    shown = client.get(href, headers=auth).get_json()
    assert shown["state"] == "finished"
    assert shown["result"]["tags"] == 1
    assert shown["worker_name"].startswith(celery_worker.hostname + "/")
    assert shown["start_time"] and shown["finish_time"]
    assert published_document(broker_services, "rest/app")["tags"] == {"v1": digest}


def test_deleting_a_repository_through_the_rest_api_unpublishes_it(broker_services, celery_worker, auth):
    repo = make_repository(broker_services, "short/lived")
    push_image(broker_services, repo, "v1", [b"short lived layer"])
    assert wait_for_task(broker_services, submit_publish(broker_services, repo["_id"]))["state"] == "finished"
    client = create_app(broker_services).test_client()

    response = client.delete(f"/pulp/api/v2/repositories/{repo['_id']}/", headers=auth)

    assert response.status_code == 202, response.get_data(as_text=True)
    task = wait_for_task(broker_services, response.get_json()["spawned_tasks"][0]["task_id"])
    assert task["state"] == "finished", task["error"]
    assert not fmt.repository_dir(Path(broker_services.settings.published_dir), "short/lived").exists()
    assert broker_services.db.repositories.find_one({"_id": repo["_id"]}) is None


def test_two_publishes_of_one_repository_never_run_at_once(broker_services):
    second_held_back = threading.Event()
    held_back_ids: list[str] = []
    probe = ProbedStorage(broker_services.settings.storage_path, broker_services.db,
                          hold_first_reader_until=second_held_back)
    broker_services.storage = probe
    repo = make_repository(broker_services, "contended")
    push_image(broker_services, repo, "v1", [b"contended layer %d" % i for i in range(4)])

    def on_postrun(task_id: str = "", **_: Any) -> None:
        # A message handled while its task stays waiting: the worker held it back, without retrying.
        if broker_services.db.tasks.find_one({"_id": task_id}, {"state": 1})["state"] == "waiting":
            held_back_ids.append(task_id)
            second_held_back.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        with start_embedded_worker(broker_services.celery, broker_services, concurrency=4):
            # The first publish holds the lock and waits inside its work until the second was held back.
            first = submit_publish(broker_services, repo["_id"])
            # Asked while the first still waits, a publish is that one (no twins): ask once it runs.
            deadline = time.monotonic() + 30
            while broker_services.db.tasks.find_one({"_id": first})["state"] == "waiting":
                assert time.monotonic() < deadline, "the first publish never started"
                time.sleep(0.02)
            second = submit_publish(broker_services, repo["_id"])
            assert second != first
            outcomes = [wait_for_task(broker_services, task_id) for task_id in (first, second)]
    finally:
        task_postrun.disconnect(on_postrun)

    assert [task["state"] for task in outcomes] == ["finished", "finished"], [t["error"] for t in outcomes]
    # The second waited for the first to end, then was sent again by it (not re-queued every second).
    assert held_back_ids == [second]
    assert outcomes[1]["started"] >= outcomes[0]["finished"]
    assert outcomes[1]["sends"] == 2
    assert probe.most_at_once[repo["_id"]] == 1
    assert probe.lock_held_by_reader and all(probe.lock_held_by_reader)
    assert broker_services.db.locks.count_documents({}) == 0


def test_publishes_of_two_repositories_run_at_once(broker_services):
    first_repo = make_repository(broker_services, "parallel/one")
    second_repo = make_repository(broker_services, "parallel/two")
    probe = ProbedStorage(broker_services.settings.storage_path, broker_services.db,
                          meet_at_barrier={first_repo["_id"], second_repo["_id"]})
    broker_services.storage = probe
    push_image(broker_services, first_repo, "v1", [b"first repository layer"])
    push_image(broker_services, second_repo, "v1", [b"second repository layer"])

    with start_embedded_worker(broker_services.celery, broker_services, concurrency=4):
        task_ids = [submit_publish(broker_services, repo["_id"]) for repo in (first_repo, second_repo)]
        outcomes = [wait_for_task(broker_services, task_id) for task_id in task_ids]

    # Each publish waited at a barrier for the other one: both finishing proves they overlapped.
    assert [task["state"] for task in outcomes] == ["finished", "finished"], [t["error"] for t in outcomes]
    assert not probe.barrier.broken


def test_a_lock_left_by_a_dead_worker_does_not_block_forever(broker_services, celery_worker):
    repo = make_repository(broker_services, "orphaned/lock")
    digest, _ = push_image(broker_services, repo, "v1", [b"layer behind a dead lock"])
    resource = tasks.repository_resource(repo["_id"])
    dead_task = tasks.create_task(broker_services.db, "publish", [resource], {"repo_id": repo["_id"]})
    broker_services.db.tasks.update_one({"_id": dead_task["_id"]}, {"$set": {
        "state": "running", "worker": "vanished@nowhere", "started": utcnow(),
        "lease_expires": utcnow() + timedelta(seconds=2)}})
    # The dead worker's lease runs out two seconds from now and nobody renews it.
    broker_services.db.locks.insert_one({"_id": resource, "task_id": dead_task["_id"], "worker": "vanished@nowhere",
                                         "expires": utcnow() + timedelta(seconds=2)})

    task = wait_for_task(broker_services, submit_publish(broker_services, repo["_id"]))

    assert task["state"] == "finished", task["error"]
    assert published_document(broker_services, "orphaned/lock")["tags"] == {"v1": digest}
    dead = broker_services.db.tasks.find_one({"_id": dead_task["_id"]})
    assert dead["state"] == "error"
    assert "stopped renewing" in dead["error"]["description"]
    assert broker_services.db.locks.count_documents({}) == 0


def test_starting_a_worker_ends_the_tasks_of_workers_that_died(broker_services):
    resource = tasks.repository_resource("crashed")
    dead_task = tasks.create_task(broker_services.db, "publish", [resource], {"repo_id": "crashed"})
    broker_services.db.tasks.update_one({"_id": dead_task["_id"]}, {"$set": {
        "state": "running", "worker": "crashed@host", "started": utcnow(),
        "lease_expires": utcnow() - timedelta(seconds=1)}})
    broker_services.db.locks.insert_one({"_id": resource, "task_id": dead_task["_id"], "worker": "crashed@host",
                                         "expires": utcnow() - timedelta(seconds=1)})

    with start_embedded_worker(broker_services.celery, broker_services, concurrency=1):
        dead = broker_services.db.tasks.find_one({"_id": dead_task["_id"]})

    assert dead["state"] == "error"
    assert dead["finished"] is not None
    assert broker_services.db.locks.count_documents({}) == 0


def test_a_failing_task_ends_as_error_with_a_message(broker_services, celery_worker):
    task = wait_for_task(broker_services, submit_publish(broker_services, "no-such-repository"))

    assert task["state"] == "error"
    assert task["error"]["code"] == "PublishError"
    assert "no-such-repository" in task["error"]["description"]
    assert task["finished"] is not None
    assert broker_services.db.locks.count_documents({}) == 0


def test_a_task_canceled_before_the_worker_takes_it_is_not_run(broker_services, celery_worker):
    repo = make_repository(broker_services, "canceled/early")
    push_image(broker_services, repo, "v1", [b"never published"])
    resource = tasks.repository_resource(repo["_id"])
    task = tasks.create_task(broker_services.db, "publish", [resource], {"repo_id": repo["_id"]})
    broker_services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"state": "canceled", "finished": utcnow()}})
    handled = threading.Event()

    def on_postrun(task_id: str = "", **_: Any) -> None:
        if task_id == task["_id"]:
            handled.set()

    task_postrun.connect(on_postrun, weak=False)
    try:
        broker_services.celery.signature(tasks.TASK_NAMES["publish"],
                                         kwargs={"task_id": task["_id"], "repo_id": repo["_id"]}).apply_async(
            task_id=task["_id"])
        assert handled.wait(30), "the worker never took the canceled task's message"
    finally:
        task_postrun.disconnect(on_postrun)

    skipped = broker_services.db.tasks.find_one({"_id": task["_id"]})
    assert (skipped["state"], skipped["started"], skipped["worker"]) == ("canceled", None, None)
    assert not fmt.repository_dir(Path(broker_services.settings.published_dir), "canceled/early").exists()


def test_a_running_worker_is_listed_in_status_and_leaves_the_list_when_it_stops(broker_services, auth):
    client = create_app(broker_services).test_client()
    with start_embedded_worker(broker_services.celery, broker_services, concurrency=1) as worker:
        listed = client.get("/pulp/api/v2/status/", headers=auth).get_json()["known_workers"]
        assert [entry["name"] for entry in listed] == [task_runner.worker_identity(worker.hostname)]
        assert listed[0]["name"].startswith(worker.hostname + "/")
    after = client.get("/pulp/api/v2/status/", headers=auth).get_json()["known_workers"]
    assert after == []


def test_republish_all_run_by_the_worker_upgrades_the_tree_and_its_publish_tasks_run(broker_services,
                                                                                     celery_worker):
    from pulp_registry.republish import PUBLISHED_TREE_RESOURCE
    from tests.republish.format1_tree import write_format1_tree

    root = Path(broker_services.settings.published_dir)
    write_format1_tree(root, {"team/old": False})
    repo = make_repository(broker_services, "team/old")
    push_image(broker_services, repo, "latest", [b"republished layer"])
    broker_services.db.repositories.update_one({"_id": repo["_id"]}, {"$set": {"last_published": utcnow()}})

    task = wait_for_task(broker_services, tasks.submit(broker_services, "republish", [PUBLISHED_TREE_RESOURCE])["_id"])

    assert task["state"] == "finished", task["error"]
    assert task["result"] == {"upgraded": True, "catalog": 1, "publish_tasks": 1}
    [spawned] = tasks.spawned_tasks(broker_services.db, task["_id"])
    assert wait_for_task(broker_services, spawned["_id"])["state"] == "finished"
    assert (root / fmt.FORMAT_FILE).read_text() == fmt.FORMAT_TEXT
    assert set(published_document(broker_services, "team/old")["tags"]) == {"latest"}
