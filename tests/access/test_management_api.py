"""The users, roles and permissions resources of the admin API, as an administrator uses them."""
from __future__ import annotations

from tests.conftest import basic_auth

API = "/pulp/api/v2"


def test_an_administrator_creates_a_user_a_role_and_a_grant_and_the_user_can_then_act(client, auth):
    assert client.post(f"{API}/roles/", json={"name": "deployers", "description": "ship it"},
                       headers=auth).status_code == 201
    created = client.post(f"{API}/users/", json={"login": "bob", "password": "bob-secret-pw", "name": "Bob",
                                                 "roles": ["deployers"]}, headers=auth)
    assert created.status_code == 201
    assert created.get_json()["roles"] == ["deployers"] and "password_hash" not in created.get_json()
    bob = basic_auth("bob", "bob-secret-pw")
    assert client.post(f"{API}/repositories/", json={"name": "bob/app"}, headers=bob).status_code == 403
    granted = client.post(f"{API}/permissions/actions/grant_to_role/", headers=auth, json={
        "role": "deployers", "resource": "/pulp/api/v2/repositories/", "operations": ["CREATE", "READ"]})
    assert granted.status_code == 200 and granted.get_json()["operations"] == ["CREATE", "READ"]
    assert client.post(f"{API}/repositories/", json={"name": "bob/app"}, headers=bob).status_code == 201
    role = client.get(f"{API}/roles/deployers/", headers=auth).get_json()
    assert role["users"] == ["bob"]
    assert role["permissions"] == [{"resource": "/pulp/api/v2/repositories/", "operations": ["CREATE", "READ"]}]
    me = client.get(f"{API}/whoami/", headers=bob).get_json()
    assert me["login"] == "bob" and me["permissions"][0]["resource"] == "/pulp/api/v2/repositories/"


def test_a_user_sees_only_the_repositories_they_may_read(client, auth, make_user, grant):
    for name in ("a/one", "b/two"):
        assert client.post(f"{API}/repositories/", json={"name": name}, headers=auth).status_code == 201
    viewer = make_user("viewer", "one-readers")
    grant("one-readers", "/pulp/api/v2/repositories/a-one/", "READ")
    listed = client.get(f"{API}/repositories/", headers=viewer).get_json()
    assert [repo["name"] for repo in listed] == ["a/one"]
    assert client.get(f"{API}/repositories/b-two/", headers=viewer).status_code == 403
    assert len(client.get(f"{API}/repositories/", headers=auth).get_json()) == 2


def test_unknown_roles_and_bad_input_are_refused_with_the_field_named_and_change_nothing(client, auth, services):
    before = services.db.users.count_documents({})
    refused = client.post(f"{API}/users/", json={"login": "x1", "password": "pw-pw-pw", "roles": ["nope"]},
                          headers=auth)
    assert refused.status_code == 400 and refused.get_json()["field"] == "roles"
    assert "nope" in refused.get_json()["message"]
    bad_login = client.post(f"{API}/users/", json={"login": "no spaces", "password": "pw"}, headers=auth)
    assert bad_login.status_code == 400 and bad_login.get_json()["field"] == "login"
    bad_op = client.post(f"{API}/permissions/actions/grant_to_user/", headers=auth,
                         json={"login": "admin", "resource": "/", "operations": ["FLY"]})
    assert bad_op.status_code == 400 and bad_op.get_json()["field"] == "operations"
    unknown = client.post(f"{API}/permissions/actions/grant_to_user/", headers=auth,
                          json={"login": "ghost", "resource": "/", "operations": ["READ"]})
    assert unknown.status_code == 404
    assert services.db.users.count_documents({}) == before
    assert services.db.permissions.count_documents({}) == 0


def test_the_last_super_user_cannot_be_removed_or_deleted(client, auth):
    removed = client.delete(f"{API}/roles/super-users/users/admin/", headers=auth)
    assert removed.status_code == 409 and "last member" in removed.get_json()["message"]
    assert client.delete(f"{API}/users/admin/", headers=auth).status_code == 409
    assert client.delete(f"{API}/roles/super-users/", headers=auth).status_code == 409
    demoted = client.put(f"{API}/users/admin/", json={"delta": {"remove_roles": ["super-users"]}}, headers=auth)
    assert demoted.status_code == 409
    assert client.get(f"{API}/whoami/", headers=auth).get_json()["roles"] == ["super-users"]


def test_a_changed_password_takes_effect_at_once_and_ends_api_tokens(client, auth, make_user):
    carol = make_user("carol")
    token = client.post(f"{API}/actions/login/", headers=carol).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/whoami/", headers=bearer).status_code == 200
    changed = client.put(f"{API}/users/carol/", json={"delta": {"password": "a-new-carol-pw"}}, headers=auth)
    assert changed.status_code == 200
    assert client.get(f"{API}/whoami/", headers=carol).status_code == 401
    assert client.get(f"{API}/whoami/", headers=bearer).status_code == 401
    assert client.get(f"{API}/whoami/", headers=basic_auth("carol", "a-new-carol-pw")).status_code == 200


def test_login_gives_a_token_that_works_until_logout(client, services, make_user):
    dave = make_user("dave")
    answer = client.post(f"{API}/actions/login/", headers=dave)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    token = answer.get_json()["token"]
    assert answer.get_json()["expires"].endswith("Z")
    assert services.db.api_tokens.find_one({"_id": token}) is None  # only its hash is stored
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/whoami/", headers=bearer).get_json()["login"] == "dave"
    assert client.post(f"{API}/actions/login/", headers=bearer).status_code == 401  # a token cannot beget one
    assert client.post(f"{API}/actions/logout/", headers=bearer).status_code == 204
    refused = client.get(f"{API}/whoami/", headers=bearer)
    assert refused.status_code == 401 and "log in again" in refused.get_json()["message"]


def test_an_expired_api_token_is_refused(client, services, make_user):
    from datetime import timedelta

    from pulp_registry.db import utcnow

    erin = make_user("erin")
    token = client.post(f"{API}/actions/login/", headers=erin).get_json()["token"]
    services.db.api_tokens.update_many({"login": "erin"}, {"$set": {"expires": utcnow() - timedelta(seconds=1)}})
    assert client.get(f"{API}/whoami/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_deleting_a_user_ends_their_grants_and_tokens(client, auth, services, make_user):
    frank = make_user("frank")
    token = client.post(f"{API}/actions/login/", headers=frank).get_json()["token"]
    client.post(f"{API}/permissions/actions/grant_to_user/", headers=auth,
                json={"login": "frank", "resource": "/pulp/api/v2/tasks/", "operations": ["READ"]})
    assert client.delete(f"{API}/users/frank/", headers=auth).status_code == 204
    assert client.get(f"{API}/whoami/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert services.db.permissions.count_documents({"subject": "frank"}) == 0
    make_user("frank")
    assert client.get(f"{API}/tasks/", headers=basic_auth("frank", "frank-secret-pw")).status_code == 403
