"""A real broker (redis-server on a free 127.0.0.1 port) and a real Celery worker taking tasks from it.

The broker (``redis_url``, tests/conftest.py) is started once per session. Each test gets
fresh services (mongomock, a temporary data dir) and an embedded Celery worker
(``workers.embedded``) consuming from that broker, so a task goes API ->
redis -> worker exactly as in production, only inside the test process.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from pulp_registry.config import Settings
from pulp_registry.permissions import SUPER_USERS
from pulp_registry.services import Services, build_services
from pulp_registry.users import create_user
from workers.app import create_celery_app
from workers.embedded import start_embedded_worker

#: The user the ``auth`` fixture of tests/conftest.py sends.
ADMIN_LOGIN, ADMIN_PASSWORD = "admin", "admin-password"
TASK_DEADLINE = 60.0


@pytest.fixture
def broker_settings(tmp_path: Path, redis_url: str) -> Settings:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()  # no message of an earlier test reaches this test's worker
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url=redis_url)


@pytest.fixture
def broker_services(broker_settings: Settings) -> Services:
    """Services on mongomock whose Celery app sends tasks to the real redis broker (not eagerly)."""
    services = build_services(broker_settings)
    services.celery = create_celery_app(broker_settings)
    create_user(services.db, ADMIN_LOGIN, ADMIN_PASSWORD, roles=[SUPER_USERS], rounds=4)
    return services


@pytest.fixture
def celery_worker(broker_services: Services) -> Iterator[Any]:
    """A real Celery worker (4 threads) taking tasks from redis, running in this process."""
    with start_embedded_worker(broker_services.celery, broker_services, concurrency=4) as worker:
        yield worker


def wait_for_task(services: Services, task_id: str, deadline: float = TASK_DEADLINE) -> dict[str, Any]:
    """The task document once it is finished, error or canceled; fail with its state after ``deadline``."""
    end = time.monotonic() + deadline
    while True:
        task = services.db.tasks.find_one({"_id": task_id})
        if task is not None and task["state"] in ("finished", "error", "canceled"):
            return task
        if time.monotonic() > end:
            raise AssertionError(f"task {task_id} still {task and task['state']} after {deadline:.0f} s: {task}")
        time.sleep(0.05)
