"""Log lines: the JSON and text formats, one request line per request, task ids, and no secret ever."""
from __future__ import annotations

import base64
import io
import json
import logging
import re
import sys
from pathlib import Path

import pytest

from pulp_registry import task_runner, tasks
from pulp_registry.config import Settings
from pulp_registry.logging_setup import JsonFormatter, TaskIdFilter, TextFormatter
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD, basic_auth
from tests.crane.conftest import ALL_MANIFEST_TYPES, CraneUnderTest
from tests.crane.content import Publisher
from tests.registry.conftest import Pusher

from crane.metrics import MANIFEST_ROUTE

REQUEST_FIELDS = {"request_id", "method", "route", "path", "status", "bytes", "duration_ms", "user", "client"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The admin side behind one trusted proxy, logging JSON."""
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://",
                    bcrypt_rounds=4, credential_cache_seconds=0, log_format="json", trusted_proxies=1)


def record(message: str = "hello", level: int = logging.INFO, **extra) -> logging.LogRecord:
    made = logging.LogRecord("pulp_registry.test", level, __file__, 1, message, None, None)
    made.__dict__.update(extra)
    return made


def test_a_json_record_is_one_line_with_its_fields_and_its_exception_as_a_field():
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        failed = record("it failed: %s", logging.ERROR, exc_info=sys.exc_info(), fields={"status": 500})
    failed.args = ("twice\nover",)
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    document = json.loads(line)
    assert document["level"] == "ERROR" and document["logger"] == "pulp_registry.test"
    assert document["message"] == "it failed: twice\nover" and document["status"] == 500
    assert "ValueError: bad" in document["exception"] and re.match(r"\d{4}-\d\d-\d\dT", document["time"])


def test_records_of_a_running_task_carry_its_id_in_both_formats():
    token = tasks.CURRENT_TASK.set({"_id": "task-42"})
    try:
        inside = record("publishing", fields={"repository": "x"})
        TaskIdFilter().filter(inside)
    finally:
        tasks.CURRENT_TASK.reset(token)
    assert json.loads(JsonFormatter().format(inside))["task_id"] == "task-42"
    text = TextFormatter().format(inside)
    assert text.endswith("pulp_registry.test: [task task-42] publishing repository=x")
    outside = record("idle")
    TaskIdFilter().filter(outside)
    assert "task_id" not in json.loads(JsonFormatter().format(outside))
    assert "[task" not in TextFormatter().format(outside)


def test_a_task_run_by_a_worker_logs_with_its_id(services, caplog):
    task = tasks.create_task(services.db, "orphan_cleanup", ["test:log"], {})
    caplog.handler.addFilter(TaskIdFilter())
    with caplog.at_level(logging.INFO):
        task_runner.run_task(services, task["_id"], lambda progress: logging.getLogger("pulp_registry.x").info("work"))
    [work] = [found for found in caplog.records if found.getMessage() == "work"]
    assert work.task_id == task["_id"]


def request_lines(caplog, logger: str = "pulp_registry.requests") -> list[dict]:
    return [found.fields for found in caplog.records if found.name == logger]


def test_the_admin_side_logs_one_json_line_per_request_with_a_trusted_request_id(client, auth, caplog):
    with caplog.at_level(logging.INFO):
        given = client.get("/v2/", headers={**auth, "X-Request-ID": "proxy-id-1", "X-Forwarded-For": "203.0.113.9"})
        missing = client.get("/v2/team/app/manifests/1.0", headers=auth)
    assert given.headers["X-Request-ID"] == "proxy-id-1"
    assert re.fullmatch(r"[0-9a-f]{32}", missing.headers["X-Request-ID"])
    first, second = request_lines(caplog)
    assert set(first) == REQUEST_FIELDS
    assert first == {**first, "request_id": "proxy-id-1", "method": "GET", "route": "/v2/", "path": "/v2/",
                     "status": 200, "user": ADMIN_LOGIN, "client": "203.0.113.9"}
    assert first["duration_ms"] >= 0 and isinstance(first["bytes"], int)
    assert second["route"] == "/v2/<path:name>/manifests/<reference>" and second["status"] == 404
    assert second["request_id"] == missing.headers["X-Request-ID"]
    line = json.loads(JsonFormatter().format([r for r in caplog.records if r.name == "pulp_registry.requests"][0]))
    assert line["message"] == "GET /v2/ 200" and line["logger"] == "pulp_registry.requests"


def test_without_a_trusted_proxy_a_clients_request_id_and_address_are_not_taken(services, caplog):
    from pulp_registry.app import create_app

    services.settings = Settings(**{**services.settings.__dict__, "trusted_proxies": 0})
    client = create_app(services).test_client()
    with caplog.at_level(logging.INFO):
        answer = client.get("/livez", headers={"X-Request-ID": "forged", "X-Forwarded-For": "198.51.100.1"})
    assert answer.headers["X-Request-ID"] != "forged"
    [line] = request_lines(caplog)
    assert line["client"] != "198.51.100.1" and line["user"] is None


@pytest.mark.parametrize("setting", [{"log_format": "json"}, {"access_log": True}])
def test_crane_logs_a_line_per_request_on_both_paths(services, caplog, setting):
    publisher = Publisher(services)
    repo = publisher.repository("team/app")
    publisher.image(repo, "1.0")
    publisher.publish(repo)
    crane = CraneUnderTest(Path(services.settings.published_dir), **setting)
    with caplog.at_level(logging.INFO):
        fast = crane.get("/v2/team/app/manifests/1.0", accept=ALL_MANIFEST_TYPES)
        crane.get("/v2/team/app/tags/list")
    fast_line, flask_line = request_lines(caplog, "crane.requests")
    assert fast_line["route"] == MANIFEST_ROUTE and fast_line["bytes"] == len(fast.data) and fast_line["status"] == 200
    assert fast_line["request_id"] == fast.headers["X-Request-ID"]
    assert flask_line["route"] == "/v2/<repo_name:name>/tags/list" and flask_line["path"] == "/v2/team/app/tags/list"
    assert set(flask_line) == REQUEST_FIELDS


@pytest.mark.slow   # each failing sync retries its connection for seconds
def test_no_password_or_token_is_ever_logged(client, auth, services, closed_url, caplog):
    """A login, a token, a push with it, a feed with credentials and its (failing) sync, all at DEBUG."""
    feed_password, feed_token = "feed-pass-7d1c", "feed-token-5e2a9b"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG):
            api_token = client.post("/pulp/api/v2/actions/login/", headers=auth).get_json()["token"]
            assert client.get("/pulp/api/v2/whoami/", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
            registry_token = client.get("/token?service=pulp-registry&scope=repository:team/app:push,pull",
                                        headers=auth).get_json()["token"]
            Pusher(client, {"Authorization": f"Bearer {registry_token}"}).image("team/app", tag="1.0")
            client.get("/v2/team/app/manifests/1.0", headers=basic_auth("admin", "wrong-pass-3f9a"))
            for credentials in ({"username": "bob", "password": feed_password}, {"token": feed_token}):
                created = client.post("/pulp/api/v2/repositories/", headers=auth, json={
                    "name": f"mirror/{len(credentials)}", "feed": {"url": closed_url, "credentials": credentials}})
                assert created.status_code == 201, created.get_json()
                sync = client.post(f"/pulp/api/v2/repositories/{created.get_json()['id']}/actions/sync/",
                                   json={}, headers=auth)
                assert sync.status_code == 202
    finally:
        root.removeHandler(handler)
    logged = caplog.text + stream.getvalue() + "".join(repr(getattr(found, "fields", "")) for found in caplog.records)
    assert "/token" in logged and "team/app" in logged   # the requests were logged ...
    basic = base64.b64encode(f"{ADMIN_LOGIN}:{ADMIN_PASSWORD}".encode()).decode()
    for secret in (ADMIN_PASSWORD, basic, api_token, registry_token, registry_token.split(".")[1], feed_password,
                   feed_token, "wrong-pass-3f9a"):
        assert secret not in logged, secret   # ... and no secret with them
