"""Tasks across real worker processes: killed workers, twin node names, lost messages, order, cancel.

Each worker is ``pulp-registry worker`` in a process of its own (Celery's
prefork pool), taking messages from a real redis and sharing one database
with this test through ``tests/mongo_server.py``: MongoDB cannot run here, so
mongomock is served over the wire protocol. A publish is made slow by
``tests/worker_process.py`` so a test can find it running.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

from pulp_registry import repositories, tasks
from pulp_registry.config import Settings
from pulp_registry.services import Services, build_services
from tests.integration.test_worker_tasks import published_document, submit_publish
from tests.mongo_server import MongoWireServer
from tests.publish.sample_content import make_repository, push_image
from tests.sync.flaky_proxy import FlakyPolicy, FlakyProxy
from tests.worker_process import slow_path
from workers.app import create_celery_app

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
#: A dead worker's lease runs out after this many seconds; the reaper passes every second.
LEASE = 3


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    with MongoWireServer() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, mongo: MongoWireServer, redis_url: str) -> Settings:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return Settings(data_dir=str(tmp_path / "data"), mongo_url=mongo.url, mongo_database=f"t{uuid.uuid4().hex}",
                    broker_url=redis_url, task_lock_timeout=LEASE, task_dispatch_timeout=2)


@pytest.fixture
def services(settings: Settings) -> Services:
    services = build_services(settings)
    services.celery = create_celery_app(settings)
    return services


class Workers:
    """Starts worker processes (each in a session of its own) and kills whatever is left at the end."""

    def __init__(self, settings: Settings, services: Services, log_dir: Path) -> None:
        self.settings = settings
        self.services = services
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, concurrency: int = 2, **settings: Any) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        values = {"data_dir": self.settings.data_dir, "mongo_url": self.settings.mongo_url,
                  "mongo_database": self.settings.mongo_database, "broker_url": self.settings.broker_url,
                  "task_lock_timeout": LEASE, "task_dispatch_timeout": 2, **settings}
        env.update({f"PULP_REGISTRY_{key.upper()}": str(value) for key, value in values.items()})
        known = {worker["_id"] for worker in self.services.db.workers.find()}
        log = open(self.log_dir / f"worker-{name}-{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.worker_process", f"--concurrency={concurrency}", f"--hostname={name}@%h"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.processes.append(process)
        # Started once its heartbeat (written under its own worker id) is in the database.
        wait_for(lambda: {worker["_id"] for worker in self.services.db.workers.find()
                          if worker["_id"].startswith(f"{name}@")} - known, 60, f"worker {name} to start",
                 process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool processes at once, as a machine that dies would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.fixture
def workers(settings: Settings, services: Services, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(settings, services, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def wait_for(predicate: Callable[[], Any], seconds: float, what: str, process: subprocess.Popen | None = None) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"waiting for {what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def task(services: Services, task_id: str) -> dict[str, Any]:
    return services.db.tasks.find_one({"_id": task_id})


def ended(services: Services, task_id: str, seconds: float = 60) -> dict[str, Any]:
    return wait_for(lambda: (found := task(services, task_id))["state"] in ("finished", "error", "canceled")
                    and found, seconds, f"task {task_id} to end")


def repository(services: Services, name: str, slow_seconds: float = 0) -> dict[str, Any]:
    repo = make_repository(services, name)
    push_image(services, repo, "v1", [f"layer of {name}".encode()])
    if slow_seconds:
        slow_path(services.settings.data_dir, repo["_id"]).write_text(str(slow_seconds))
    return repo


def test_a_worker_killed_mid_task_loses_it_and_the_next_task_runs_elsewhere(services, workers):
    first_worker, second_worker = workers.start("one"), workers.start("two")
    slow, fast = repository(services, "slow/app", slow_seconds=120), repository(services, "fast/app")

    doomed = submit_publish(services, slow["_id"])
    running = wait_for(lambda: task(services, doomed)["state"] == "running" and task(services, doomed), 30,
                       "the slow publish to start")
    victim, survivor = (first_worker, "two@") if running["worker"].startswith("one@") else (second_worker, "one@")
    queued = submit_publish(services, slow["_id"])  # a new task: the first one is running, not waiting
    assert queued != doomed
    # Another repository is not held back: its publish runs and ends while the slow one still runs.
    other = ended(services, submit_publish(services, fast["_id"]))
    assert other["state"] == "finished", other["error"]
    assert task(services, doomed)["state"] == "running"
    assert task(services, queued)["state"] == "waiting"

    workers.kill(victim)
    slow_path(services.settings.data_dir, slow["_id"]).unlink()

    lost = ended(services, doomed)
    assert lost["state"] == "error" and lost["error"]["code"] == "WorkerLost", lost
    after = ended(services, queued)
    assert after["state"] == "finished", after["error"]
    assert after["worker"].startswith(survivor)
    assert after["started"] >= lost["finished"]
    assert published_document(services, "slow/app")["tags"].keys() == {"v1"}
    assert services.db.locks.count_documents({}) == 0


def test_two_workers_with_one_node_name_never_end_each_others_tasks(services, workers):
    workers.start("same", concurrency=1)
    slow = repository(services, "slow/twin", slow_seconds=6)
    running_id = submit_publish(services, slow["_id"])
    wait_for(lambda: task(services, running_id)["state"] == "running", 30, "the publish to start")

    workers.start("same", concurrency=1)  # an overlapping restart, or a second worker on the host

    names = [worker["_id"] for worker in services.db.workers.find() if worker["_id"].startswith("same@")]
    assert len(names) == 2 and len(set(names)) == 2
    outcome = ended(services, running_id)
    assert outcome["state"] == "finished", outcome["error"]


def test_a_publish_whose_message_was_lost_is_sent_again_by_the_reaper(services, workers, redis_url):
    repo = repository(services, "lost/message")
    task_id = submit_publish(services, repo["_id"])
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen("celery") == 1
        client.delete("celery")  # the broker lost it (or a worker died after taking it)

    workers.start("rescuer")

    outcome = ended(services, task_id)
    assert outcome["state"] == "finished", outcome["error"]
    assert outcome["sends"] == 2
    assert published_document(services, "lost/message")["tags"].keys() == {"v1"}
    # A later push is published again: the lost task no longer stands for the repository's publishes.
    push_image(services, repo, "v2", [b"second layer"])
    later = ended(services, submit_publish(services, repo["_id"]))
    assert later["state"] == "finished" and later["_id"] != task_id
    assert published_document(services, "lost/message")["tags"].keys() == {"v1", "v2"}


def test_tasks_on_one_repository_run_one_after_another_in_queue_order(services, workers):
    workers.start("left")
    workers.start("right")
    repo = repository(services, "queued/app", slow_seconds=0.5)
    queued = []
    for _ in range(4):  # not ``submit``: publishes have no twins, and here we want four in the queue
        created = tasks.create_task(services.db, "publish", [tasks.repository_resource(repo["_id"])],
                                    {"repo_id": repo["_id"]})
        tasks.send(services, created)
        queued.append(created["_id"])

    outcomes = [ended(services, task_id) for task_id in queued]

    assert [outcome["state"] for outcome in outcomes] == ["finished"] * 4, [o["error"] for o in outcomes]
    for before, after in zip(outcomes, outcomes[1:]):
        assert after["started"] >= before["finished"]
    assert {outcome["worker"].split("@")[0] for outcome in outcomes} <= {"left", "right"}


def test_a_running_task_canceled_stops_at_a_safe_point_and_publishes_nothing(services, workers):
    workers.start("busy")
    repo = repository(services, "cancel/me", slow_seconds=60)
    task_id = submit_publish(services, repo["_id"])
    wait_for(lambda: task(services, task_id)["state"] == "running", 30, "the publish to start")

    assert tasks.cancel(services, task_id)["cancel_requested"] is True

    outcome = ended(services, task_id, 20)
    assert outcome["state"] == "canceled"
    assert outcome["progress"]["waiting"]["done"] < outcome["progress"]["waiting"]["total"]
    assert not (Path(services.settings.published_dir) / "repositories" / "cancel").exists()
    assert services.db.locks.count_documents({}) == 0


def test_a_task_past_its_time_limit_stops_as_error(services, workers):
    workers.start("strict", task_time_limits="publish=2,default=3600")
    repo = repository(services, "too/slow", slow_seconds=60)

    outcome = ended(services, submit_publish(services, repo["_id"]), 30)

    assert outcome["state"] == "error"
    assert outcome["error"]["code"] == "TaskTimeLimitExceeded"


def test_a_sync_killed_with_its_worker_fetches_only_the_rest_when_run_again(services, workers, upstream):
    layers = {f"1.{n}": f"layer {n} ".encode() * 50_000 for n in range(6)}
    digests = {tag: upstream.push_image("team/app", tag, [layer]) for tag, layer in layers.items()}
    proxy = FlakyProxy(upstream, FlakyPolicy()).start()   # no faults: it counts what the sync fetches
    try:
        repo = repositories.create_repository(services.db, "mirror/app", feed={
            "url": proxy.url, "upstream_name": "team/app", "max_downloads": 1})
        marker = Path(services.settings.data_dir) / "slow-sync"
        marker.write_text("0.5")
        doomed_worker = workers.start("syncer")
        doomed = tasks.submit(services, "sync", [tasks.repository_resource(repo["_id"])], repo_id=repo["_id"])["_id"]
        wait_for(lambda: len(blob_gets(proxy)) >= 4, 60, "the sync to fetch a few blobs")

        workers.kill(doomed_worker)
        fetched_before = blob_gets(proxy)
        assert services.db.tags.count_documents({"repo_id": repo["_id"]}) == 0   # nothing visible yet
        marker.unlink()
        workers.start("rescuer")
        lost = ended(services, doomed)
        assert lost["error"]["code"] == "WorkerLost", lost
        again = ended(services, tasks.submit(services, "sync", [tasks.repository_resource(repo["_id"])],
                                             repo_id=repo["_id"])["_id"])
    finally:
        proxy.stop()

    assert again["state"] == "finished", again["error"]
    assert {tag["name"]: tag["manifest_digest"] for tag in services.db.tags.find({"repo_id": repo["_id"]})} == digests
    fetched_after = blob_gets(proxy)[len(fetched_before):]
    # Only what the killed sync had not stored is fetched again: at most the one blob in flight repeats.
    assert len(set(fetched_before) & set(fetched_after)) <= 1
    assert len(fetched_before) + len(fetched_after) <= len(set(fetched_before) | set(fetched_after)) + 1


def blob_gets(proxy: FlakyProxy) -> list[str]:
    return [path.rsplit("/", 1)[1] for method, path, status in proxy.log
            if method == "GET" and "/blobs/" in path and status == 200]
