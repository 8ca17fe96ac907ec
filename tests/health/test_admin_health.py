"""The admin side's ``/livez``, ``/readyz`` (no login) and the operations part of ``/pulp/api/v2/status/``."""
from __future__ import annotations

import socket
import time
from datetime import timedelta
from pathlib import Path

import pymongo
import pytest

from pulp_registry.api import health
from pulp_registry.app import create_app
from pulp_registry.config import Settings
from pulp_registry.db import Collections, utcnow
from pulp_registry.services import Services
from pulp_registry.storage import open_storage
from pulp_registry.tasks import TaskState
from pulp_registry.worker_heartbeats import record_heartbeat


def test_livez_answers_200_without_login(client):
    response = client.get("/livez")
    assert response.status_code == 200 and response.get_json() == {"status": "alive"}


def test_readyz_answers_200_without_login_when_database_and_broker_answer(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_readiness_is_reused_for_a_moment_so_a_load_balancer_cannot_hammer_the_database(client, services,
                                                                                      monkeypatch):
    pings = []
    original = services.db.ping
    monkeypatch.setattr(services.db, "ping", lambda: pings.append(1) or original())
    readiness = health.Readiness(services)
    services._registry_readiness = readiness
    for _ in range(10):
        assert client.get("/readyz").status_code == 200
    assert len(pings) == 1
    readiness._expires = 0.0   # the moment is over
    client.get("/readyz")
    assert len(pings) == 2


def test_status_shows_workers_with_their_last_heartbeat_queue_depth_version_and_read_only(client, auth, services):
    record_heartbeat(services.db, "celery@alive")
    services.db.workers.insert_one({"_id": "celery@dead", "last_heartbeat": utcnow() - timedelta(minutes=5)})
    for state in (TaskState.WAITING, TaskState.WAITING, TaskState.RUNNING, TaskState.FINISHED):
        services.db.tasks.insert_one({"state": state.value, "type": "publish"})
    status = client.get("/pulp/api/v2/status/", headers=auth).get_json()
    assert status["database"] == {"connected": True} and status["messaging"] == {"connected": True}
    assert status["version"] == status["versions"]["platform_version"]
    workers = {worker["id"]: worker for worker in status["workers"]}
    assert workers["celery@alive"]["online"] is True and workers["celery@alive"]["last_heartbeat"].endswith("Z")
    assert workers["celery@dead"]["online"] is False and workers["celery@dead"]["seconds_since_heartbeat"] >= 299
    assert [worker["name"] for worker in status["known_workers"]] == ["celery@alive"]   # kept as before
    assert status["queue"] == {"waiting": 2, "running": 1}
    assert status["read_only"] == {"enabled": False}


def test_status_shows_read_only_mode_with_its_reason(client, auth, services):
    maintenance = pytest.importorskip("pulp_registry.maintenance")
    maintenance.enter_read_only(services.db, "backup running", user="admin")
    read_only = client.get("/pulp/api/v2/status/", headers=auth).get_json()["read_only"]
    assert read_only["enabled"] is True and read_only["reason"] == "backup running"
    assert read_only["user"] == "admin" and read_only["since"].endswith("Z")


def test_status_still_needs_a_login(client):
    assert client.get("/pulp/api/v2/status/").status_code == 401


# --- MongoDB down ---------------------------------------------------------------------------------

def app_on_database(tmp_path: Path, mongo_url: str, timeout_ms: int = 500):
    """The admin app with a pymongo client on ``mongo_url`` (nothing is asked of it before a request)."""
    settings = Settings(data_dir=str(tmp_path / "data"), mongo_url=mongo_url, broker_url="memory://",
                        bcrypt_rounds=4)
    client = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms,
                                 tz_aware=True)
    services = Services(settings=settings, db=Collections(client["pulp_registry"]),
                        storage=open_storage(settings))
    return create_app(services).test_client(), client


def test_readyz_answers_503_naming_the_database_when_mongodb_refuses_connections(tmp_path, closed_url):
    port = closed_url.rsplit(":", 1)[1]
    client, mongo = app_on_database(tmp_path, f"mongodb://127.0.0.1:{port}/")
    try:
        response = client.get("/readyz")
    finally:
        mongo.close()
    assert response.status_code == 503
    assert response.get_json() == {"status": "unready", "failing": ["database"],
                                   "checks": {"database": "unreachable", "broker": "ok"}}


def test_readyz_is_bounded_in_time_when_mongodb_swallows_requests(tmp_path, monkeypatch):
    # A socket that accepts connections and never answers: a ping would wait for the server selection timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        client, mongo = app_on_database(tmp_path, f"mongodb://127.0.0.1:{port}/", timeout_ms=30_000)
        monkeypatch.setattr(health, "DATABASE_CHECK_TIMEOUT", 0.5)
        try:
            started = time.monotonic()
            response = client.get("/readyz")
            took = time.monotonic() - started
        finally:
            mongo.close()
    assert response.status_code == 503 and response.get_json()["failing"] == ["database"]
    assert took < 3.0
