"""Shared fixtures: settings on a temporary data dir, services on mongomock, the admin app.

API tests run Celery tasks eagerly (in the calling thread) through the real
Celery app; integration tests in ``tests/integration`` start a real broker and
worker instead.
"""
from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from pulp_registry.config import Settings
from pulp_registry.permissions import SUPER_USERS
from pulp_registry.services import Services, build_services
from pulp_registry.users import create_user
from tests.servers import free_port, redis_server

pytest_plugins = ["tests.secrets_guard"]

ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "admin-password"


def basic_auth(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # bcrypt's lowest cost keeps hundreds of tests fast; every request still runs a real bcrypt check
    # (credentials are not remembered between requests unless a test asks for it).
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://",
                    bcrypt_rounds=4, credential_cache_seconds=0)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    from workers import context
    from workers.app import create_celery_app

    from tests.mongo_rules import CheckingClient

    # Every write of every test is checked against what MongoDB refuses (mongomock accepts it).
    services = build_services(settings, mongo_client=CheckingClient())
    services.celery = create_celery_app(settings, task_always_eager=True, task_eager_propagates=False)
    context.set_services(services)
    create_user(services.db, ADMIN_LOGIN, ADMIN_PASSWORD, roles=[SUPER_USERS], rounds=4)
    yield services


@pytest.fixture
def app(services: Services):
    from pulp_registry.app import create_app

    app = create_app(services)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth() -> dict[str, str]:
    """Basic credentials of the admin user every test starts with."""
    return basic_auth(ADMIN_LOGIN, ADMIN_PASSWORD)


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Any]:
    """An upstream registry for syncs: Debian's docker-registry over plain HTTP, anonymous, deletes enabled."""
    from tests.sync.upstreams import start_registry

    with start_registry(tmp_path / "upstream") as server:
        yield server


@pytest.fixture
def closed_url() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a redis-server started for this session."""
    with redis_server(free_port(), tmp_path_factory.mktemp("redis")) as url:
        yield url
