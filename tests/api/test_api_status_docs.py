"""``/pulp/api/v2/status/`` and the OpenAPI document; JSON errors for unrouted API paths."""
from __future__ import annotations

import re
from datetime import timedelta

import yaml

from pulp_registry.api.status import broker_connected
from pulp_registry.db import utcnow
from pulp_registry.worker_heartbeats import record_heartbeat


def test_status_reports_versions_database_broker_and_pull_host(client, auth, settings):
    response = client.get("/pulp/api/v2/status/", headers=auth)
    assert response.status_code == 200
    status = response.get_json()
    assert status["api_version"] == "2"
    assert status["versions"]["platform_version"]
    assert status["database"] == {"connected": True}
    assert status["messaging"] == {"connected": True}  # memory:// broker
    assert status["known_workers"] == []
    assert status["pull_host"] == settings.pull_host


def test_status_lists_workers_that_sent_a_heartbeat_recently(client, auth, services):
    record_heartbeat(services.db, "celery@host-1")
    services.db.workers.insert_one({"_id": "celery@gone", "last_heartbeat": utcnow() - timedelta(minutes=5)})
    workers = client.get("/pulp/api/v2/status/", headers=auth).get_json()["known_workers"]
    assert [worker["name"] for worker in workers] == ["celery@host-1"]
    assert workers[0]["last_heartbeat"].endswith("Z")


def test_an_unreachable_broker_is_reported_not_connected():
    # Nothing listens on port 1 of localhost: the check fails fast instead of hanging.
    assert broker_connected("redis://127.0.0.1:1/0") is False


def test_openapi_is_served_without_credentials_as_yaml_and_json(client):
    as_yaml = client.get("/pulp/api/v2/openapi.yaml")
    assert as_yaml.status_code == 200
    document = yaml.safe_load(as_yaml.get_data(as_text=True))
    assert document["openapi"].startswith("3.")
    as_json = client.get("/pulp/api/v2/openapi.json")
    assert as_json.status_code == 200
    assert as_json.get_json() == document


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_documents_every_route_and_method_of_the_rest_api_and_push(app, client):
    document = yaml.safe_load(client.get("/pulp/api/v2/openapi.yaml").get_data(as_text=True))
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith(("/pulp/api/v2", "/v2/"))]
    assert rules
    for rule in rules:
        path = _openapi_path(rule.rule)
        assert path in document["paths"], f"{rule.rule} is not in openapi.yaml"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in document["paths"][path], f"{method} {rule.rule} is not in openapi.yaml"


def test_openapi_lists_the_push_endpoints(client):
    document = yaml.safe_load(client.get("/pulp/api/v2/openapi.yaml").get_data(as_text=True))
    assert "/v2/{name}/manifests/{reference}" in document["paths"]
    assert "/v2/{name}/blobs/uploads/" in document["paths"]
    assert "put" in document["paths"]["/v2/{name}/manifests/{reference}"]


def test_every_schema_reference_in_openapi_resolves(client):
    document = yaml.safe_load(client.get("/pulp/api/v2/openapi.yaml").get_data(as_text=True))
    text = client.get("/pulp/api/v2/openapi.json").get_data(as_text=True)
    for reference in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = document
        for part in reference.split("/"):
            assert part in node, f"#/{reference} does not resolve"
            node = node[part]


def test_unrouted_api_paths_and_methods_answer_json(client, auth):
    missing = client.get("/pulp/api/v2/no-such-thing/", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["error"]
    wrong_method = client.patch("/pulp/api/v2/repositories/", headers=auth)
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["message"]
