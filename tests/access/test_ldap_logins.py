"""LDAP users through the admin API and /v2/, against a real slapd (tests/ldap_server.py)."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import pytest

from pulp_registry import permissions, roles, users
from tests.conftest import ADMIN_PASSWORD, basic_auth
from tests.ldap_server import USERS, Slapd, run_slapd, user_dn

WHOAMI = "/pulp/api/v2/whoami/"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with run_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture
def directory(services, slapd):
    """The admin side logs directory users in: developers may push to team/app, admins are super-users."""
    services.settings = replace(services.settings, ldap=slapd.settings(
        group_roles={"developers": ["app-pushers"], "admins": [permissions.SUPER_USERS]},
        default_roles=["staff"], nested_groups=True))
    for name in ("app-pushers", "staff"):
        roles.create_role(services.db, name)
    permissions.grant(services.db, permissions.ROLE, "app-pushers", "/pulp/api/v2/repositories/team-app/",
                      ["READ", "UPDATE"])
    permissions.grant(services.db, permissions.ROLE, "app-pushers", "/pulp/api/v2/repositories/", ["CREATE"])
    return slapd


def login(name: str) -> dict[str, str]:
    return basic_auth(name, USERS[name][1])


def test_a_directory_user_is_created_at_the_first_login_with_the_roles_of_their_groups(client, directory, services):
    me = client.get(WHOAMI, headers=login("alice"))
    assert me.status_code == 200
    body = me.get_json()
    assert body["source"] == "ldap" and body["name"] == "Alice Liddell"
    assert body["ldap_roles"] == ["app-pushers", "staff"] and body["manual_roles"] == []
    assert users.get_user(services.db, "alice")["password_hash"] is None
    assert client.get(WHOAMI, headers=basic_auth("alice", "wrong")).status_code == 401


def test_group_changes_in_the_directory_give_and_take_push_rights_at_the_next_login(client, directory):
    push = "/v2/team/app/blobs/uploads/"
    assert client.post(push, headers=login("dave")).status_code == 401
    directory.add_member("developers", user_dn("dave"))
    try:
        assert client.post(push, headers=login("dave")).status_code == 202
    finally:
        directory.remove_member("developers", user_dn("dave"))
    assert client.post(push, headers=login("dave")).status_code == 401


def test_a_role_given_by_hand_stays_when_the_directory_changes(client, directory, services, auth):
    assert client.get(WHOAMI, headers=login("bob")).status_code == 200
    roles.create_role(services.db, "auditors")
    assert client.post("/pulp/api/v2/roles/auditors/users/", json={"login": "bob"}, headers=auth).status_code == 200
    directory.remove_member("developers", user_dn("bob"))
    try:
        body = client.get(WHOAMI, headers=login("bob")).get_json()
    finally:
        directory.add_member("developers", user_dn("bob"))
    assert body["manual_roles"] == ["auditors"] and body["ldap_roles"] == ["staff"]


@pytest.mark.parametrize("injected", ["*", "a*", "al*", "*)(uid=*", "alice)(|(uid=*", "ALICE"])
def test_filter_injection_logins_with_alices_password_never_log_in_as_alice(client, directory, services, injected):
    assert client.get(WHOAMI, headers=basic_auth(injected, USERS["alice"][1])).status_code == 401
    assert users.get_user(services.db, injected) is None


def test_a_local_user_of_the_same_name_is_not_shadowed_by_the_directory(client, directory, services):
    users.create_user(services.db, "carol", "local-carol-pw", rounds=4)
    assert client.get(WHOAMI, headers=basic_auth("carol", "local-carol-pw")).get_json()["source"] == "local"
    assert client.get(WHOAMI, headers=login("carol")).status_code == 401


def test_an_unreachable_directory_answers_503_and_local_users_still_log_in(client, services, slapd, caplog):
    services.settings = replace(services.settings, ldap=slapd.settings(
        url="ldap://127.0.0.1:9", timeout=2.0))
    refused = client.get(WHOAMI, headers=login("alice"))
    assert refused.status_code == 503 and refused.get_json()["error"] == "unavailable"
    on_v2 = client.get("/v2/", headers=login("alice"))
    assert on_v2.status_code == 503 and on_v2.get_json()["errors"][0]["code"] == "UNAVAILABLE"
    assert "ldap://127.0.0.1:9 is unavailable" in caplog.text
    assert client.get(WHOAMI, headers=basic_auth("admin", ADMIN_PASSWORD)).status_code == 200


def test_a_directory_user_logs_in_to_the_console_and_sees_what_their_groups_allow(app, directory, services):
    from pulp_registry.repositories import create_repository
    from tests.console.conftest import log_in

    create_repository(services.db, "team/app", repo_id="team-app")
    create_repository(services.db, "other/app", repo_id="other-app", protected=True)
    browser = app.test_client()
    assert log_in(browser, "alice", "wrong").status_code == 401
    assert log_in(browser, "alice", USERS["alice"][1]).status_code == 302
    listing = browser.get("/console/repositories/").get_data(as_text=True)
    assert "team/app" in listing and "other/app" not in listing
    assert browser.get("/console/repositories/other-app/").status_code == 403
    assert users.get_user(services.db, "alice")["source"] == "ldap"
