"""``GET /v2/`` and authentication on the push side: Basic credentials, or the token flow's challenge."""
from __future__ import annotations

from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.registry.conftest import sha256


def test_version_check_answers_empty_object_when_authenticated(client, auth):
    response = client.get("/v2/", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {}
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_version_check_without_credentials_gets_a_bearer_challenge_naming_the_token_endpoint(client):
    response = client.get("/v2/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="http://localhost/token",service="pulp-registry"'
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.get_json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_wrong_password_is_refused_and_pushes_nothing(client, snapshot):
    before = snapshot()
    wrong = basic_auth("admin", "not-the-password")
    assert client.get("/v2/", headers=wrong).status_code == 401
    start = client.post("/v2/my/app/blobs/uploads/", headers=wrong)
    assert start.status_code == 401
    assert start.headers["WWW-Authenticate"].startswith('Bearer realm="http://localhost/token"')
    assert start.get_json()["errors"][0]["code"] == "UNAUTHORIZED"
    data = b"blob bytes"
    single = client.post(f"/v2/my/app/blobs/uploads/?digest={sha256(data)}", data=data, headers=wrong)
    assert single.status_code == 401
    manifest = client.put("/v2/my/app/manifests/latest", data=b"{}", headers=wrong)
    assert manifest.status_code == 401
    before.assert_unchanged()


def test_unknown_user_and_garbled_header_are_refused(client):
    assert client.get("/v2/", headers=basic_auth("nobody", "x")).status_code == 401
    assert client.get("/v2/", headers={"Authorization": "Basic !!!not-base64"}).status_code == 401
    assert client.get("/v2/", headers={"Authorization": "Bearer abc"}).status_code == 401


def test_a_user_without_grants_may_log_in_but_not_push(client, services):
    create_user(services.db, "alice", "alice-password", rounds=4)
    alice = basic_auth("alice", "alice-password")
    assert client.get("/v2/", headers=alice).status_code == 200
    refused = client.post("/v2/my/app/blobs/uploads/", headers=alice)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer realm="http://localhost/token",service="pulp-registry",'
        'scope="repository:my/app:pull,push",error="insufficient_scope"')
    assert refused.get_json()["errors"][0]["detail"] == [
        {"Type": "repository", "Name": "my/app", "Action": "pull"},
        {"Type": "repository", "Name": "my/app", "Action": "push"}]


def test_changed_password_takes_effect_at_once(client, services, auth):
    from pulp_registry.users import set_password

    assert client.get("/v2/", headers=auth).status_code == 200
    set_password(services.db, "admin", "a-new-password")
    assert client.get("/v2/", headers=auth).status_code == 401
    assert client.get("/v2/", headers=basic_auth("admin", "a-new-password")).status_code == 200


def test_unrouted_v2_paths_answer_in_registry_error_form(client, auth):
    response = client.post("/v2/my/app/tags/list", headers=auth)
    assert response.status_code == 405
    assert response.get_json()["errors"][0]["code"] == "UNSUPPORTED"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
