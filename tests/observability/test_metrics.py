"""Prometheus metrics of the admin API, Crane and the workers, in one process (Flask's test client).

Metrics live in the process-wide registry, so each test compares a scrape
before and after what it does.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pulp_registry import task_runner, tasks
from pulp_registry.config import Settings
from pulp_registry.worker_heartbeats import record_heartbeat
from tests.conftest import ADMIN_LOGIN
from tests.crane.conftest import ALL_MANIFEST_TYPES, CraneUnderTest
from tests.crane.content import Publisher
from tests.observability.helpers import assert_no_raw_labels, value

from crane.fastpath import FastPath
from crane.metrics import BLOB_ROUTE, FAST_KINDS, MANIFEST_ROUTE, version_time

ADMIN_MANIFESTS = "/v2/<path:name>/manifests/<reference>"


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.get_data(as_text=True)


def test_admin_metrics_count_requests_by_route_template_method_and_status(client, auth, app):
    before = scrape(client)
    for _ in range(3):
        assert client.get("/v2/secret-team/app/manifests/1.0", headers=auth).status_code == 404
    assert client.get("/pulp/api/v2/status/", headers=auth).status_code == 200
    assert client.get("/no/such/thing/at/all").status_code == 404
    after = scrape(client)

    labels = {"route": ADMIN_MANIFESTS, "method": "GET", "status": "404"}
    assert value(after, "pulp_registry_http_requests_total", **labels) - \
        value(before, "pulp_registry_http_requests_total", **labels) == 3
    assert value(after, "pulp_registry_http_request_duration_seconds_count", **labels) - \
        value(before, "pulp_registry_http_request_duration_seconds_count", **labels) == 3
    assert value(after, "pulp_registry_http_response_bytes_total", **labels) > \
        value(before, "pulp_registry_http_response_bytes_total", **labels)
    assert value(after, "pulp_registry_http_requests_total", route="unmatched", status="404") >= 1
    assert_no_raw_labels(after, app, "pulp_registry_http", ["secret-team", ADMIN_LOGIN, "no/such"])


def test_admin_metrics_need_no_login_and_can_be_turned_off(services, tmp_path):
    from pulp_registry.app import create_app

    services.settings = Settings(**{**services.settings.__dict__, "metrics": False})
    assert create_app(services).test_client().get("/metrics").status_code == 404


def test_tasks_by_type_and_state_queue_depth_and_workers_online_come_from_the_database(client, services):
    for state in ("waiting", "waiting", "running", "finished"):
        task = tasks.create_task(services.db, "publish", [f"repository:{state}"], {})
        services.db.tasks.update_one({"_id": task["_id"]}, {"$set": {"state": state}})
    tasks.create_task(services.db, "sync", ["repository:x"], {})
    record_heartbeat(services.db, "worker-1@host/1")
    record_heartbeat(services.db, "worker-2@host/2")

    text = scrape(client)
    assert value(text, "pulp_registry_tasks", type="publish", state="waiting") == 2
    assert value(text, "pulp_registry_tasks", type="publish", state="running") == 1
    assert value(text, "pulp_registry_tasks", type="publish", state="finished") == 1
    assert value(text, "pulp_registry_tasks", type="copy", state="error") == 0   # every known series is there
    assert value(text, "pulp_registry_task_queue_depth") == 3
    assert value(text, "pulp_registry_workers_online") == 2
    assert value(text, "pulp_registry_database_up") == 1


def test_task_durations_are_observed_where_tasks_end(client, services):
    before = scrape(client)
    ok = tasks.create_task(services.db, "orphan_cleanup", [f"test:{uuid.uuid4()}"], {})
    failing = tasks.create_task(services.db, "orphan_cleanup", [f"test:{uuid.uuid4()}"], {})
    assert task_runner.run_task(services, ok["_id"], lambda progress: {"removed": 0}) == {"removed": 0}

    def fail(progress):
        raise RuntimeError("boom")

    task_runner.run_task(services, failing["_id"], fail)
    after = scrape(client)
    for state in ("finished", "error"):
        name = "pulp_registry_task_duration_seconds_count"
        assert value(after, name, type="orphan_cleanup", state=state) - \
            value(before, name, type="orphan_cleanup", state=state) == 1


@pytest.fixture
def crane_and_image(services, tmp_path: Path):
    publisher = Publisher(services)
    repo = publisher.repository("secret-team/app")
    image = publisher.image(repo, "1.0")
    publisher.publish(repo)
    crane = CraneUnderTest(Path(services.settings.published_dir))
    return crane, image, publisher, repo


def test_crane_counts_fast_and_flask_answers_by_route_template(crane_and_image):
    crane, image, _, _ = crane_and_image
    before = scrape(crane.client)
    for _ in range(4):
        assert crane.get("/v2/secret-team/app/manifests/1.0").status_code == 200      # fast path
    assert crane.head(f"/v2/secret-team/app/manifests/{image.digest}").status_code == 200
    assert crane.head(f"/v2/secret-team/app/blobs/{image.config_digest}").status_code == 200
    assert crane.get(f"/v2/secret-team/app/blobs/{image.config_digest}").status_code == 200  # Flask streams it
    assert crane.get("/v2/secret-team/app/tags/list").status_code == 200
    assert crane.get("/v2/secret-team/app/manifests/nope").status_code == 404
    after = scrape(crane.client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("crane_http_requests_total", route=MANIFEST_ROUTE, method="GET", status="200") == 4
    assert delta("crane_http_request_duration_seconds_count", route=MANIFEST_ROUTE, method="GET", status="200") == 4
    assert delta("crane_http_response_bytes_total", route=MANIFEST_ROUTE, method="GET", status="200") == \
        4 * len(image.raw)
    assert delta("crane_http_requests_total", route=MANIFEST_ROUTE, method="HEAD", status="200") == 1
    assert delta("crane_http_requests_total", route=BLOB_ROUTE, method="HEAD", status="200") == 1
    assert delta("crane_http_requests_total", route=BLOB_ROUTE, method="GET", status="200") == 1
    assert delta("crane_http_requests_total", route=MANIFEST_ROUTE, method="GET", status="404") == 1
    assert delta("crane_http_requests_total", route="/v2/<repo_name:name>/tags/list") == 1
    assert delta("crane_manifests_served_total", method="GET") == 4
    assert delta("crane_manifests_served_total", method="HEAD") == 1
    assert delta("crane_blobs_served_total") == 2
    assert value(after, "crane_repositories_cached") == 1   # held whole since the requests by digest
    assert value(after, "crane_tags_cached") == 1           # 1.0, cached on its second request before that
    assert_no_raw_labels(after, crane.app, "crane_http", ["secret-team", "nope"])


def test_crane_reports_the_age_of_its_metadata_and_counts_reloads(crane_and_image):
    crane, _, publisher, repo = crane_and_image
    version = crane.tree.repository("secret-team/app").version   # loaded when first asked for: then seen
    before = scrape(crane.client)
    assert 0 <= value(before, "crane_metadata_age_seconds") < 120
    assert value(before, "crane_metadata_newest_published_timestamp_seconds") == pytest.approx(version_time(version))

    publisher.image(repo, "2.0")
    publisher.publish(repo)
    crane.tick()
    after = scrape(crane.client)
    assert value(after, "crane_metadata_reloads_total") - value(before, "crane_metadata_reloads_total") == 1
    assert value(after, "crane_metadata_newest_published_timestamp_seconds") > \
        value(before, "crane_metadata_newest_published_timestamp_seconds")


def test_the_fast_paths_route_labels_are_the_flask_rules_it_stands_in_for(crane_and_image):
    crane, _, _, _ = crane_and_image
    rules = {rule.rule for rule in crane.app.url_map.iter_rules()}
    assert {route for _, route, _ in FAST_KINDS} == {MANIFEST_ROUTE, BLOB_ROUTE} <= rules


def test_crane_metrics_off_means_no_endpoint_and_no_counting(services, crane_and_image):
    _, _, _, _ = crane_and_image
    crane = CraneUnderTest(Path(services.settings.published_dir), metrics=False)
    assert crane.get("/v2/secret-team/app/manifests/1.0", accept=ALL_MANIFEST_TYPES).status_code == 200
    assert crane.get("/metrics").status_code == 404
    fast = crane.app.wsgi_app
    assert isinstance(fast, FastPath) and fast.metrics is None


def test_fast_path_counts_stay_exact_while_threads_record_and_flushes_run(crane_and_image):
    import threading

    from crane.metrics import CraneMetrics

    crane, _, _, _ = crane_and_image
    before = scrape(crane.client)
    metrics = CraneMetrics(crane.tree)
    per_thread, threads = 20_000, 4

    def work() -> None:
        for _ in range(per_thread):
            metrics.record(2, 0, 0.0001)   # blob HEAD

    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    while any(thread.is_alive() for thread in running):
        metrics.flush()
    for thread in running:
        thread.join()
    metrics.flush()
    metrics.flush()   # the late additions to the cells the previous flush retired
    after = scrape(crane.client)
    labels = {"route": BLOB_ROUTE, "method": "HEAD", "status": "200"}
    for name in ("crane_http_requests_total", "crane_http_request_duration_seconds_count"):
        assert value(after, name, **labels) - value(before, name, **labels) == per_thread * threads
