"""Metrics and logs of real processes: ``crane --workers 2`` and ``pulp-registry worker``.

Each server writes stdout and stderr to a file, as under systemd or compose;
the tests read that file as an operator would: JSON lines only (``log_format:
json``), no colour codes, no kombu hostname warning, no gunicorn
``Listening at:  (PID)`` without an address.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis
import requests

from pulp_registry import tasks
from pulp_registry.config import Settings
from pulp_registry.services import Services, build_services
from tests.mongo_server import MongoWireServer
from tests.observability.helpers import value
from tests.observability.published_tree import make_tree
from tests.publish.sample_content import make_repository, push_image
from tests.servers import console_script, free_port, poll, stop_process, wait_for_http
from workers.app import create_celery_app

from crane.metrics import BLOB_ROUTE, MANIFEST_ROUTE

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NOISE = ("\x1b[", "No hostname was supplied", "Listening at:  (", "Traceback")


def assert_quiet_json_log(path: Path) -> list[dict[str, Any]]:
    """Every line of the log is a JSON object; none holds start-up noise. The parsed lines."""
    text = path.read_text(encoding="utf-8")   # binary garbage would not decode
    for noise in NOISE:
        assert noise not in text, f"{noise!r} in {path}:\n{text}"
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"{path} is empty"
    parsed = []
    for line in lines:
        try:
            document = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line in {path}: {line!r}") from None
        assert {"time", "level", "logger", "message"} <= document.keys(), line
        parsed.append(document)
    return parsed


def assert_quiet_text_log(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    for noise in NOISE:
        assert noise not in text, f"{noise!r} in {path}:\n{text}"
    return text


@contextlib.contextmanager
def running_crane(workdir: Path, **settings: str) -> Iterator[dict[str, Any]]:
    """``crane --workers 2`` with ``CRANE_<KEY>`` settings over a tree with one image, output to a file."""
    published, digest = make_tree(workdir / "data")
    port = free_port()
    log_path = workdir / "crane.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CRANE_", "PROMETHEUS_"))}
    env.update({f"CRANE_{key.upper()}": setting for key, setting in settings.items()})
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([console_script("crane"), "--data-dir", published, "--bind", f"127.0.0.1:{port}",
                                    "--workers", "2", "--threads", "2"], stdout=log_file, stderr=subprocess.STDOUT,
                                   env=env)

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"crane exited with {process.returncode}:\n{log_path.read_text()}")

    try:
        wait_for_http(f"http://127.0.0.1:{port}/", deadline_s=30, alive=alive)
        yield {"url": f"http://127.0.0.1:{port}", "log": log_path, "digest": digest, "process": process}
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def crane_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``crane --workers 2`` with ``log_format: json`` and metrics on."""
    with running_crane(tmp_path_factory.mktemp("crane"), log_format="json", metrics="true") as crane:
        yield crane


def test_crane_with_two_workers_counts_every_request_whichever_worker_is_scraped(crane_server):
    url = crane_server["url"]
    manifest_gets, blob_heads, tag_lists = 40, 10, 10
    for _ in range(manifest_gets):   # a new connection each: the kernel spreads them over both workers
        assert requests.get(f"{url}/v2/obs/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).status_code == 200
    manifest = requests.get(f"{url}/v2/obs/app/manifests/1.0", headers={"Accept": OCI_MANIFEST}).json()
    for _ in range(blob_heads):
        assert requests.head(f"{url}/v2/obs/app/blobs/{manifest['config']['digest']}").status_code == 200
    for _ in range(tag_lists):
        assert requests.get(f"{url}/v2/obs/app/tags/list").status_code == 200
    expected = {(MANIFEST_ROUTE, "GET"): manifest_gets + 1, (BLOB_ROUTE, "HEAD"): blob_heads,
                ("/v2/<repo_name:name>/tags/list", "GET"): tag_lists}

    def counted(text: str) -> dict[tuple[str, str], float]:
        return {key: value(text, "crane_http_requests_total", route=key[0], method=key[1]) for key in expected}

    # Fast answers reach the shared files within a second (each worker's flusher); then every scrape agrees.
    poll(lambda: counted(requests.get(f"{url}/metrics").text) == expected, 10, "all requests counted")
    for _ in range(8):
        text = requests.get(f"{url}/metrics").text
        assert counted(text) == expected
        assert value(text, "crane_manifests_served_total", method="GET") == manifest_gets + 1
        assert value(text, "crane_blobs_served_total", method="HEAD") == blob_heads
        assert value(text, "crane_http_request_duration_seconds_count", route=MANIFEST_ROUTE) == manifest_gets + 1
        assert value(text, "crane_metadata_age_seconds") > 0
        assert "obs/app" not in "".join(line for line in text.splitlines() if not line.startswith("#"))


def test_crane_logs_one_json_line_per_request_and_no_start_up_noise(crane_server):
    url = crane_server["url"]
    marker = uuid.uuid4().hex
    response = requests.get(f"{url}/v2/obs/app/manifests/{marker}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 404
    request_id = response.headers["X-Request-ID"]
    fast = requests.get(f"{url}/v2/obs/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    lines = poll(lambda: [line for line in assert_quiet_json_log(crane_server["log"])
                          if line.get("request_id") in (request_id, fast.headers["X-Request-ID"])
                          ] if marker in crane_server["log"].read_text() else None, 10, "request lines")
    by_id = {line["request_id"]: line for line in lines}
    missed = by_id[request_id]
    assert missed["logger"] == "crane.requests"
    assert missed["route"] == MANIFEST_ROUTE and missed["path"] == f"/v2/obs/app/manifests/{marker}"
    assert missed["status"] == 404 and missed["method"] == "GET" and missed["client"] == "127.0.0.1"
    assert missed["duration_ms"] >= 0 and missed["bytes"] > 0 and missed["user"] is None
    answered = by_id[fast.headers["X-Request-ID"]]
    assert answered["status"] == 200 and answered["route"] == MANIFEST_ROUTE and answered["bytes"] == len(fast.content)
    text = crane_server["log"].read_text()
    assert f"Listening at: {url}" in text   # gunicorn's line names the address
    assert text.count(f'"path": "/v2/obs/app/manifests/{marker}"') == 1   # no second (gunicorn) access line


def test_crane_in_text_format_with_access_log_starts_quietly_and_logs_requests(tmp_path):
    with running_crane(tmp_path, access_log="true") as crane:
        response = requests.get(f"{crane['url']}/v2/obs/app/manifests/1.0", headers={"Accept": OCI_MANIFEST})
        line = poll(lambda: [found for found in assert_quiet_text_log(crane["log"]).splitlines()
                             if f"request_id={response.headers['X-Request-ID']}" in found], 10, "the request line")
    assert "INFO crane.requests: GET /v2/obs/app/manifests/1.0 200 " in line[0]
    assert f"route={MANIFEST_ROUTE} " in line[0] and "status=200" in line[0]
    text = assert_quiet_text_log(crane["log"])
    assert f"Listening at: {crane['url']} (" in text and '"GET /v2/' not in text   # no gunicorn access line


# --- pulp-registry worker ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mongo() -> Iterator[MongoWireServer]:
    with MongoWireServer() as server:
        yield server


@pytest.fixture
def worker_services(tmp_path: Path, mongo: MongoWireServer, redis_url: str) -> Services:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    settings = Settings(data_dir=str(tmp_path / "data"), mongo_url=mongo.url, mongo_database=f"t{uuid.uuid4().hex}",
                        broker_url=redis_url)
    services = build_services(settings)
    services.celery = create_celery_app(settings)
    return services


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_worker_logs_with_task_ids_serves_task_metrics_and_starts_quietly(worker_services, tmp_path, log_format):
    settings = worker_services.settings
    metrics_port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "PROMETHEUS_"))}
    env["PYTHONPATH"] = str(ROOT)
    env.update({f"PULP_REGISTRY_{key.upper()}": str(setting) for key, setting in {
        "data_dir": settings.data_dir, "mongo_url": settings.mongo_url, "mongo_database": settings.mongo_database,
        "broker_url": settings.broker_url, "log_format": log_format,
        "worker_metrics_bind": f"127.0.0.1:{metrics_port}"}.items()})
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "tests.worker_process", "--concurrency=2",
                                    f"--hostname=obs-{uuid.uuid4().hex[:6]}@%h"], cwd=ROOT, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        poll(lambda: process.poll() is None and worker_services.db.workers.count_documents({}) > 0, 60,
             "the worker's heartbeat")
        repo = make_repository(worker_services, "obs/worker")
        push_image(worker_services, repo, "latest", [b"a layer for the worker's logs"])
        task_id = tasks.submit(worker_services, "publish", [tasks.repository_resource(repo["_id"])],
                               repo_id=repo["_id"])["_id"]
        poll(lambda: worker_services.db.tasks.find_one({"_id": task_id})["state"] == "finished", 60, "the publish")
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = poll(lambda: (found := requests.get(metrics_url, timeout=5).text) and value(
            found, "pulp_registry_task_duration_seconds_count", type="publish", state="finished") == 1 and found,
                    10, "the publish's duration in the worker's metrics")
        assert "obs/worker" not in text and repo["_id"] not in text
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    if log_format == "text":
        assert f"[task {task_id}] published obs/worker" in assert_quiet_text_log(log_path)
        return
    lines = assert_quiet_json_log(log_path)
    task_lines = [line for line in lines if line.get("task_id") == task_id]
    assert any(line["logger"] == "pulp_registry.publish" for line in task_lines), "the task's records carry its id"


# --- pulp-registry api -----------------------------------------------------------------------------


def test_the_admin_api_with_two_workers_sums_its_metrics_and_logs_json(worker_services, tmp_path):
    settings = worker_services.settings
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "PROMETHEUS_"))}
    env.update({f"PULP_REGISTRY_{key.upper()}": str(setting) for key, setting in {
        "data_dir": settings.data_dir, "mongo_url": settings.mongo_url, "mongo_database": settings.mongo_database,
        "broker_url": settings.broker_url, "log_format": "json", "api_bind": f"127.0.0.1:{port}",
        "api_workers": 2}.items()})
    log_path = tmp_path / "api.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([console_script("pulp-registry"), "api"], stdout=log_file,
                                   stderr=subprocess.STDOUT, env=env)

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"pulp-registry api exited with {process.returncode}:\n{log_path.read_text()}")

    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/livez", deadline_s=60, alive=alive)
        requests_sent = 30
        for _ in range(requests_sent):
            assert requests.get(f"{url}/v2/obs/api/tags/list").status_code in (401, 404)
        route = "/v2/<path:name>/tags/list"
        scrapes = [requests.get(f"{url}/metrics").text for _ in range(6)]
        for text in scrapes:
            assert value(text, "pulp_registry_http_requests_total", route=route) == requests_sent
            assert value(text, "pulp_registry_database_up") == 1
            assert "obs/api" not in "".join(line for line in text.splitlines() if not line.startswith("#"))
    finally:
        stop_process(process)
    lines = assert_quiet_json_log(log_path)
    request_lines = [line for line in lines if line["logger"] == "pulp_registry.requests"]
    assert len([line for line in request_lines if line["route"] == route]) == requests_sent
    assert any(line["message"].startswith("Listening at: http://127.0.0.1:") for line in lines)
