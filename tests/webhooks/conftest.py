"""Fixtures of the webhook tests: a listener on 127.0.0.1, and settings that point webhooks at it."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from pulp_registry.config import Settings
from tests.registry.conftest import push  # noqa: F401 - the push helper fixture
from tests.webhooks.listener import Listener

SECRET = "hook-secret-1"


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener().start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def settings(tmp_path: Path, listener: Listener) -> Settings:
    """The shared test settings (eager Celery, mongomock), with one signed endpoint and short retries."""
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://",
                    bcrypt_rounds=4, credential_cache_seconds=0,
                    webhooks=[{"url": listener.url, "secret": SECRET, "retry_delay": 0.05, "max_retry_delay": 0.1,
                               "max_retries": 3, "timeout": 2}])
