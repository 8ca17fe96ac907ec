"""Every REST API call needs HTTP Basic credentials of a known user; the API description is public."""
from __future__ import annotations

import pytest

from pulp_registry.api.auth import auth_required, is_authorized
from tests.conftest import ADMIN_PASSWORD, basic_auth

#: Every route and method of the REST API (checked against the app's url_map below).
ENDPOINTS = [
    ("GET", "/pulp/api/v2/repositories/"),
    ("POST", "/pulp/api/v2/repositories/"),
    ("GET", "/pulp/api/v2/repositories/my-app/"),
    ("PUT", "/pulp/api/v2/repositories/my-app/"),
    ("DELETE", "/pulp/api/v2/repositories/my-app/"),
    ("POST", "/pulp/api/v2/repositories/my-app/actions/publish/"),
    ("GET", "/pulp/api/v2/repositories/my-app/images/"),
    ("GET", "/pulp/api/v2/repositories/my-app/tags/"),
    ("GET", "/pulp/api/v2/repositories/my-app/tags/latest/"),
    ("GET", "/pulp/api/v2/tasks/"),
    ("GET", "/pulp/api/v2/tasks/some-task/"),
    ("DELETE", "/pulp/api/v2/tasks/some-task/"),
    ("GET", "/pulp/api/v2/status/"),
]
PUBLIC = {"/pulp/api/v2/openapi.yaml", "/pulp/api/v2/openapi.json"}

BAD_CREDENTIALS = {
    "none": {},
    "wrong password": basic_auth("admin", "not-the-password"),
    "unknown user": basic_auth("nobody", ADMIN_PASSWORD),
    "not basic": {"Authorization": "Bearer abc.def.ghi"},
    "garbage": {"Authorization": "Basic !!!not-base64"},
}


@pytest.fixture
def existing(services, create_repo):
    """A repository and a task, so a call that slipped past auth would not fail with 404 instead."""
    from pulp_registry import tasks

    create_repo("my/app")
    services.db.tasks.insert_one({**tasks.create_task(services.db, "publish", [], {}), "_id": "some-task"})


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_calls_without_valid_credentials_answer_401_and_change_nothing(client, services, existing, method, path):
    before = {name: list(services.db.database[name].find()) for name in ("repositories", "tasks")}
    for kind, credentials in BAD_CREDENTIALS.items():
        response = client.open(path, method=method, json={"name": "other/app", "delta": {"description": "x"}},
                               headers=credentials)
        assert response.status_code == 401, kind
        assert response.headers["WWW-Authenticate"] == 'Basic realm="pulp-registry"', kind
        assert response.get_json()["error"] == "unauthorized", kind
    assert {name: list(services.db.database[name].find()) for name in before} == before


def test_the_endpoint_list_covers_every_route_and_each_view_declares_its_operation(app):
    covered = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/pulp/api/v2") or rule.rule in PUBLIC:
            continue
        view = app.view_functions[rule.endpoint]
        assert getattr(view, "required_operation", None), f"{rule.rule} has no @auth_required"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            covered.add((method, rule.rule))
    listed = set()
    for method, path in ENDPOINTS:
        adapter = app.url_map.bind("localhost")
        endpoint, _args = adapter.match(path, method=method)
        listed.update((method, rule.rule) for rule in app.url_map.iter_rules(endpoint))
    assert covered <= listed


def test_the_api_description_needs_no_credentials(client):
    for path in PUBLIC:
        assert client.get(path).status_code == 200


def test_valid_credentials_are_accepted_and_the_user_is_known_to_the_view(app, client, auth):
    from flask import g

    with app.test_request_context("/pulp/api/v2/status/", headers=auth):
        @auth_required("read")
        def view():
            return g.user["_id"]

        assert view() == "admin"
    assert client.get("/pulp/api/v2/status/", headers=auth).status_code == 200


def test_authorization_is_one_function_that_allows_any_authenticated_user_for_now():
    user = {"_id": "someone", "roles": []}
    for operation in ("create", "read", "update", "delete", "execute"):
        assert is_authorized(user, operation, "/pulp/api/v2/repositories/")
    assert not is_authorized(user, "fly", "/pulp/api/v2/repositories/")


def test_an_unknown_operation_is_a_programming_error():
    with pytest.raises(ValueError):
        auth_required("fly")
