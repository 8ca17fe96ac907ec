"""Webhook delivery through a real broker (redis) and real Celery workers: retries, backoff, worker loss.

The listener is down (nothing listens on its port) for a while, then starts on that same port: the
delivery is retried with growing delays and received exactly once. A worker killed with SIGKILL while
a delivery waits for its retry loses nothing: another worker delivers it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from pulp_registry import webhooks
from pulp_registry.app import create_app
from pulp_registry.config import Settings
from pulp_registry.permissions import SUPER_USERS
from pulp_registry.services import build_services
from pulp_registry.users import create_user
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD, basic_auth
from tests.mongo_server import MongoWireServer
from tests.registry.conftest import Pusher
from tests.webhooks.conftest import SECRET
from tests.webhooks.listener import Listener, verify_signature
from workers.app import create_celery_app
from workers.embedded import start_embedded_worker

ROOT = Path(__file__).resolve().parents[2]


class RetryLog(logging.Handler):
    """The delays the delivery task announced before each retry."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.delays: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r"retrying in ([\d.]+) s", record.getMessage())
        if match:
            self.delays.append(float(match.group(1)))


@pytest.fixture
def retry_log() -> Iterator[RetryLog]:
    handler = RetryLog()
    logger = logging.getLogger("workers.webhook_tasks")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def flush(url: str) -> None:
    with redis.Redis.from_url(url) as client:
        client.flushdb()


def deliveries_of(listener: Listener, event_id: str) -> list[Any]:
    return [item for item in listener.delivered() if any(event["id"] == event_id for event in item.events)]


def test_a_listener_down_for_a_while_gets_the_push_once_after_retries_with_backoff(tmp_path, redis_url,
                                                                                  retry_log):
    flush(redis_url)
    listener = Listener()  # its port is closed until start()
    settings = Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url=redis_url,
                        bcrypt_rounds=4, webhooks=[{"url": listener.url, "secret": SECRET, "events": ["push"],
                                                    "retry_delay": 0.2, "max_retry_delay": 1.0, "max_retries": 30}])
    services = build_services(settings)
    services.celery = create_celery_app(settings)
    create_user(services.db, ADMIN_LOGIN, ADMIN_PASSWORD, roles=[SUPER_USERS], rounds=4)
    client = create_app(services).test_client()
    try:
        with start_embedded_worker(services.celery, services, concurrency=2):
            started = time.monotonic()
            digest, _ = Pusher(client, basic_auth(ADMIN_LOGIN, ADMIN_PASSWORD)).image("my/app", tag="1")
            assert time.monotonic() - started < 5  # the push never waited for the listener
            deadline = time.monotonic() + 20
            while len(retry_log.delays) < 3:  # refused three times at least while it is down
                assert time.monotonic() < deadline, retry_log.delays
                time.sleep(0.05)
            listener.start()
            [delivery] = listener.wait(lambda received: [item for item in received if item.status == 200],
                                       30, "the push event")
            time.sleep(2.5)  # more than the longest retry delay: a duplicate would have come by now
        assert len(listener.received) == 1
        [event] = delivery.events
        assert event["action"] == "push" and event["target"]["digest"] == digest
        assert verify_signature(SECRET, delivery.body, delivery.headers["X-Registry-Signature"])
        assert retry_log.delays[:3] == [0.2, 0.4, 0.8] and max(retry_log.delays) <= 1.0
    finally:
        listener.stop()


# --- a worker process killed while a delivery waits for its retry ------------------------------------


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    with MongoWireServer() as server:
        yield server


def start_worker(settings: Settings, name: str, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    values = {"data_dir": settings.data_dir, "mongo_url": settings.mongo_url,
              "mongo_database": settings.mongo_database, "broker_url": settings.broker_url,
              "webhooks": json.dumps(settings.webhooks), "metrics": "false"}
    env.update({f"PULP_REGISTRY_{key.upper()}": str(value) for key, value in values.items()})
    with open(log_dir / f"worker-{name}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.webhooks.webhook_worker", "--concurrency=1",
                                 f"--hostname={name}@%h"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


@pytest.mark.slow
def test_a_worker_killed_while_a_delivery_waits_for_its_retry_loses_no_event(tmp_path, mongo, redis_url):
    flush(redis_url)
    listener = Listener().start()
    listener.status = 503  # down for now: every attempt is refused and retried
    settings = Settings(data_dir=str(tmp_path / "data"), mongo_url=mongo.url,
                        mongo_database=f"t{uuid.uuid4().hex}", broker_url=redis_url,
                        webhooks=[{"url": listener.url, "secret": SECRET, "retry_delay": 0.5,
                                   "max_retry_delay": 1.0, "max_retries": 50}])
    services = build_services(settings)
    services.celery = create_celery_app(settings)
    processes: list[subprocess.Popen] = []
    try:
        processes.append(start_worker(settings, "first", tmp_path))
        sent = webhooks.event("push", {"repository": "my/app", "digest": "sha256:" + "0" * 64})
        assert webhooks.notify(services, [sent]) == 1
        listener.wait(lambda received: len(received) >= 2, 60, "two refused attempts by the first worker")

        kill(processes[0])  # it held the retry, unacknowledged
        listener.status = 200
        attempts_before = len(listener.received)
        processes.append(start_worker(settings, "second", tmp_path))

        [delivery] = listener.wait(lambda received: [item for item in received if item.status == 200], 60,
                                   "the second worker's delivery")
        time.sleep(4)  # longer than the visibility timeout: a duplicate would have come by now
        assert len(deliveries_of(listener, sent["id"])) == 1
        assert len(listener.received) > attempts_before
        assert delivery.events == [sent]
        assert verify_signature(SECRET, delivery.body, delivery.headers["X-Registry-Signature"])
    finally:
        for process in processes:
            kill(process)
        listener.stop()
