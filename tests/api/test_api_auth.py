"""Every REST API call needs credentials of a known user (Basic or an API token); the API description is public."""
from __future__ import annotations

import pytest

from pulp_registry.access import auth_required, current_caller
from tests.conftest import ADMIN_PASSWORD, basic_auth

#: Every route and method of the REST API (checked against the app's url_map below).
ENDPOINTS = [
    ("GET", "/pulp/api/v2/repositories/"),
    ("POST", "/pulp/api/v2/repositories/"),
    ("GET", "/pulp/api/v2/repositories/my-app/"),
    ("PUT", "/pulp/api/v2/repositories/my-app/"),
    ("DELETE", "/pulp/api/v2/repositories/my-app/"),
    ("POST", "/pulp/api/v2/repositories/my-app/actions/publish/"),
    ("POST", "/pulp/api/v2/repositories/my-app/actions/sync/"),
    ("POST", "/pulp/api/v2/repositories/my-app/actions/remove/"),
    ("GET", "/pulp/api/v2/repositories/my-app/history/"),
    ("POST", "/pulp/api/v2/actions/copy/"),
    ("GET", "/pulp/api/v2/orphans/"),
    ("POST", "/pulp/api/v2/orphans/actions/cleanup/"),
    ("GET", f"/pulp/api/v2/orphans/sha256:{'0' * 64}/"),
    ("GET", "/pulp/api/v2/repositories/my-app/images/"),
    ("GET", "/pulp/api/v2/repositories/my-app/tags/"),
    ("GET", "/pulp/api/v2/repositories/my-app/tags/latest/"),
    ("GET", "/pulp/api/v2/tasks/"),
    ("GET", "/pulp/api/v2/tasks/some-task/"),
    ("DELETE", "/pulp/api/v2/tasks/some-task/"),
    ("GET", "/pulp/api/v2/status/"),
    ("GET", "/pulp/api/v2/users/"),
    ("POST", "/pulp/api/v2/users/"),
    ("GET", "/pulp/api/v2/users/admin/"),
    ("PUT", "/pulp/api/v2/users/admin/"),
    ("DELETE", "/pulp/api/v2/users/admin/"),
    ("GET", "/pulp/api/v2/roles/"),
    ("POST", "/pulp/api/v2/roles/"),
    ("GET", "/pulp/api/v2/roles/super-users/"),
    ("DELETE", "/pulp/api/v2/roles/super-users/"),
    ("POST", "/pulp/api/v2/roles/super-users/users/"),
    ("DELETE", "/pulp/api/v2/roles/super-users/users/admin/"),
    ("GET", "/pulp/api/v2/permissions/"),
    ("POST", "/pulp/api/v2/permissions/actions/grant_to_user/"),
    ("POST", "/pulp/api/v2/permissions/actions/revoke_from_user/"),
    ("POST", "/pulp/api/v2/permissions/actions/grant_to_role/"),
    ("POST", "/pulp/api/v2/permissions/actions/revoke_from_role/"),
    ("POST", "/pulp/api/v2/actions/login/"),
    ("POST", "/pulp/api/v2/actions/logout/"),
    ("GET", "/pulp/api/v2/whoami/"),
    ("GET", "/pulp/api/v2/maintenance/"),
    ("PUT", "/pulp/api/v2/maintenance/"),
    ("DELETE", "/pulp/api/v2/maintenance/"),
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
    before = {name: list(services.db.database[name].find())
              for name in ("repositories", "tasks", "users", "roles", "permissions", "api_tokens")}
    for kind, credentials in BAD_CREDENTIALS.items():
        response = client.open(path, method=method, headers=credentials, json={
            "name": "other/app", "delta": {"description": "x"}, "login": "admin", "resource": "/",
            "operations": ["READ"]} if method in ("POST", "PUT") else None)
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
    with app.test_request_context("/pulp/api/v2/status/", headers=auth):
        @auth_required("READ")
        def view():
            return current_caller().login

        assert view() == "admin"
    assert client.get("/pulp/api/v2/status/", headers=auth).status_code == 200


def test_an_unknown_operation_or_registry_action_is_a_programming_error():
    with pytest.raises(ValueError):
        auth_required("fly")
    with pytest.raises(ValueError):
        auth_required("READ", repository="name")
