"""The people pages: users and roles as the API shows them, role members changed by super-users only,
and who may do what on a repository."""
from __future__ import annotations

import pytest

from pulp_registry import maintenance, permissions, roles
from pulp_registry.permissions import READ, ROLE, SUPER_USERS, UPDATE, USER
from pulp_registry.repositories import create_repository
from pulp_registry.users import create_user, get_user

from tests.conftest import ADMIN_LOGIN, basic_auth
from tests.console.conftest import log_in, post_form

PASSWORD = "a-long-password"


def _user(services, login, roles_held=(), name=""):
    return create_user(services.db, login, PASSWORD, name=name, roles=list(roles_held), rounds=4)


def _client(app, login):
    client = app.test_client()
    assert log_in(client, login, PASSWORD).status_code == 302
    return client


@pytest.fixture
def team(services):
    """A role ``pushers`` with a grant on ``team-app``, held by ``alice``; ``bob`` holds nothing."""
    roles.create_role(services.db, "pushers", "Push to the team's repository")
    repo = create_repository(services.db, "team/app", repo_id="team-app")
    permissions.grant(services.db, ROLE, "pushers", permissions.repository_resource("team-app"), [READ, UPDATE])
    _user(services, "alice", ["pushers"], name="Alice Example")
    _user(services, "bob")
    return repo


def test_the_overview_lists_users_with_source_and_roles_and_roles_with_members(console, services, team):
    services.db.users.update_one({"_id": "bob"}, {"$set": {"source": "ldap", "ldap_roles": ["pushers"]}})
    html = console.get("/console/people/").get_data(as_text=True)
    assert "<h1>Users &amp; roles</h1>" in html
    assert 'href="/console/people/users/alice"' in html and "Alice Example" in html
    assert "LDAP" in html and "local" in html
    assert 'href="/console/people/roles/pushers"' in html and "Push to the team&#39;s repository" in html
    assert "Users <span class=\"count\">(3)</span>" in html
    assert "alice, bob" in html  # the members of pushers, by hand and from the directory


def test_a_user_without_read_on_users_or_roles_gets_the_403_page(app, team):
    response = _client(app, "bob").get("/console/people/")
    assert response.status_code == 403
    assert "Your roles do not allow this page" in response.get_data(as_text=True)


def test_a_user_who_may_read_roles_only_sees_only_the_roles(app, services, team):
    roles.create_role(services.db, "role-readers")
    permissions.grant(services.db, ROLE, "role-readers", "/pulp/api/v2/roles/", [READ])
    _user(services, "carol", ["role-readers"])
    html = _client(app, "carol").get("/console/people/").get_data(as_text=True)
    assert 'id="roles-heading"' in html and 'href="/console/people/roles/pushers"' in html
    assert 'id="users-heading"' not in html and "Alice Example" not in html
    assert "do not allow reading the list of users" in html


def test_the_role_page_shows_members_and_the_roles_permissions(console, team):
    html = console.get("/console/people/roles/pushers").get_data(as_text=True)
    assert "<h1>Role pushers" in html
    assert 'href="/console/people/users/alice"' in html and "given by hand" in html
    assert "<code>/pulp/api/v2/repositories/team-app/</code>" in html and "READ, UPDATE" in html
    assert 'action="/console/people/roles/pushers/members"' in html  # a super-user may add
    assert '<option value="bob">' in html and '<option value="alice">' not in html


def test_the_role_page_needs_read_on_that_role_and_offers_no_change_to_others(app, services, team):
    assert _client(app, "bob").get("/console/people/roles/pushers").status_code == 403
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/roles/pushers/", [READ])
    bob = _client(app, "bob")
    html = bob.get("/console/people/roles/pushers").get_data(as_text=True)
    assert "alice" in html and "Only super-users may add or remove members" in html
    assert "/members" not in html
    assert bob.get("/console/people/roles/super-users").status_code == 403
    assert _client(app, "alice").get("/console/people/roles/nope").status_code == 403


def test_an_unknown_role_or_user_is_a_404_page(console):
    response = console.get("/console/people/roles/nope")
    assert response.status_code == 404 and "There is no role" in response.get_data(as_text=True)
    assert console.get("/console/people/users/nobody").status_code == 404


def test_a_super_user_adds_a_member_through_the_form(console, services, team):
    response = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members",
                         {"login": "bob"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/people/roles/pushers"
    assert "pushers" in get_user(services.db, "bob")["roles"]
    assert "bob now holds the role pushers" in console.get("/console/people/roles/pushers").get_data(as_text=True)


def test_adding_an_unknown_user_is_a_flash_error_and_changes_nothing(console, services, team):
    before = list(services.db.users.find({}, {"roles": 1}).sort("_id", 1))
    response = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members",
                         {"login": "nobody"})
    assert response.status_code == 302
    html = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing changed: user &#39;nobody&#39; does not exist" in html and "flash-error" in html
    assert list(services.db.users.find({}, {"roles": 1}).sort("_id", 1)) == before

    empty = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members",
                      {"login": "  "})
    assert "Enter the login" in console.get(empty.headers["Location"]).get_data(as_text=True)


def test_a_super_user_removes_a_member(console, services, team):
    html = console.get("/console/people/roles/pushers").get_data(as_text=True)
    assert 'action="/console/people/roles/pushers/members/alice/remove"' in html
    response = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members/alice/remove")
    assert response.status_code == 302
    assert "pushers" not in get_user(services.db, "alice")["roles"]
    assert "alice no longer holds the role pushers" in console.get(response.headers["Location"]).get_data(as_text=True)


def test_removing_the_last_super_user_is_refused_with_a_message(console, services):
    response = post_form(console, "/console/people/roles/super-users",
                         f"/console/people/roles/super-users/members/{ADMIN_LOGIN}/remove")
    html = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing changed:" in html and "last member of super-users" in html
    assert SUPER_USERS in get_user(services.db, ADMIN_LOGIN)["roles"]


def test_a_role_from_an_ldap_group_cannot_be_removed_by_hand(console, services, team):
    services.db.users.update_one({"_id": "bob"}, {"$set": {"source": "ldap", "ldap_roles": ["pushers"]}})
    html = console.get("/console/people/roles/pushers").get_data(as_text=True)
    assert "from an LDAP group" in html and "change the group in the directory" in html
    assert "/members/bob/remove" not in html
    response = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members/bob/remove")
    html = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "holds &#39;pushers&#39; through an LDAP group" in html
    assert get_user(services.db, "bob")["ldap_roles"] == ["pushers"]


def test_only_super_users_may_change_members_even_with_update_on_the_role(app, services, team):
    permissions.grant(services.db, USER, "alice", "/pulp/api/v2/roles/", [READ, UPDATE])
    alice = _client(app, "alice")
    response = post_form(alice, "/console/people/roles/pushers", "/console/people/roles/pushers/members",
                         {"login": "bob"})
    assert response.status_code == 403
    assert "only super-users" in response.get_data(as_text=True)
    assert get_user(services.db, "bob")["roles"] == []
    removal = post_form(alice, "/console/people/roles/pushers", "/console/people/roles/pushers/members/alice/remove")
    assert removal.status_code == 403 and get_user(services.db, "alice")["roles"] == ["pushers"]


def test_member_changes_without_the_csrf_token_are_refused_and_change_nothing(console, services, team):
    added = console.post("/console/people/roles/pushers/members", data={"login": "bob"})
    assert added.status_code == 400 and "reload the page" in added.get_data(as_text=True)
    removed = console.post("/console/people/roles/pushers/members/alice/remove")
    assert removed.status_code == 400
    assert get_user(services.db, "bob")["roles"] == [] and get_user(services.db, "alice")["roles"] == ["pushers"]


def test_the_user_page_shows_roles_and_merged_grants(console, services, team):
    permissions.grant(services.db, USER, "alice", "/pulp/api/v2/tasks/", [READ])
    html = console.get("/console/people/users/alice").get_data(as_text=True)
    assert "<h1>User alice" in html and "Alice Example" in html and "local account" in html
    assert 'href="/console/people/roles/pushers"' in html
    assert "<code>/pulp/api/v2/repositories/team-app/</code>" in html and "READ, UPDATE" in html
    assert "<code>/pulp/api/v2/tasks/</code>" in html


def test_the_user_page_mirrors_read_on_that_user(app, services, team):
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/users/bob/", [READ])
    bob = _client(app, "bob")
    assert bob.get("/console/people/users/bob").status_code == 200
    assert bob.get("/console/people/users/alice").status_code == 403


def test_the_access_page_says_who_may_do_what_on_the_repository(console, services, team):
    roles.create_role(services.db, "readers")
    permissions.grant(services.db, ROLE, "readers", "/pulp/api/v2/repositories/", [READ])
    _user(services, "dora", ["readers"])
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/repositories/team-app/", ["EXECUTE"])
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/repositories/other/", ["DELETE"])
    response = console.get("/console/repositories/team-app/access")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Who may do what on team/app" in html
    rows = {login: html.split(f'href="/console/people/users/{login}">{login}</a>', 1)[1].split("</tr>", 1)[0]
            for login in ("admin", "alice", "bob", "dora")}
    assert ">READ<" in rows["alice"] and ">UPDATE<" in rows["alice"] and ">DELETE<" not in rows["alice"]
    assert "pushers" in rows["alice"]
    assert ">EXECUTE<" in rows["bob"] and ">DELETE<" not in rows["bob"] and "own grant" in rows["bob"]
    assert ">READ<" in rows["dora"] and ">UPDATE<" not in rows["dora"] and "readers" in rows["dora"]
    assert ">DELETE<" in rows["admin"] and "super-users" in rows["admin"]
    assert "(inherited)" in html  # the grant of readers on the collection
    assert 'href="/console/repositories/team-app/"' in html  # back to the repository page
    assert "/pulp/api/v2/repositories/other/" not in html


def test_the_access_page_needs_read_on_the_repository_and_on_permissions(app, services, team):
    assert _client(app, "bob").get("/console/repositories/team-app/access").status_code == 403
    alice = _client(app, "alice")
    # READ on the repository is not enough: the REST API shows grants only with READ on /permissions/
    assert alice.get("/console/repositories/team-app/access").status_code == 403
    assert "Who has access" not in alice.get("/console/repositories/team-app/").get_data(as_text=True)
    permissions.grant(services.db, ROLE, "pushers", "/pulp/api/v2/permissions/", [READ])
    assert alice.get("/console/repositories/team-app/access").status_code == 200
    assert "Who has access" in alice.get("/console/repositories/team-app/").get_data(as_text=True)
    assert alice.get("/console/repositories/missing/access").status_code == 403


def test_an_impossible_name_in_a_path_is_refused_not_a_server_error(app, services, team):
    alice = _client(app, "alice")
    for url in ("/console/repositories/a%20b/", "/console/repositories/a%20b/sync",
                "/console/repositories/a%20b/history", "/console/tasks/a%20b/"):
        assert alice.get(url).status_code == 403, url
    response = alice.get("/pulp/api/v2/roles/a%20b/", headers=basic_auth("alice", PASSWORD))
    assert response.status_code == 403 and "may not" in str(response.get_json())


def test_the_access_page_of_a_missing_repository_is_a_404(console):
    response = console.get("/console/repositories/missing/access")
    assert response.status_code == 404 and "There is no repository" in response.get_data(as_text=True)


def test_the_people_pages_need_a_login(client):
    for url in ("/console/people/", "/console/people/roles/super-users", "/console/repositories/x/access"):
        response = client.get(url)
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_a_user_who_may_read_users_only_sees_users_without_role_links(app, services, team):
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/users/", [READ])
    html = _client(app, "bob").get("/console/people/").get_data(as_text=True)
    assert 'id="users-heading"' in html and "Alice Example" in html
    assert 'id="roles-heading"' not in html and 'href="/console/people/roles/' not in html
    assert '<span class="role-chip">pushers</span>' in html


def test_role_members_change_in_read_only_mode_like_the_rest_api(console, services, team):
    maintenance.enter_read_only(services.db, "backup")
    response = post_form(console, "/console/people/roles/pushers", "/console/people/roles/pushers/members",
                         {"login": "bob"})
    assert response.status_code == 302 and "pushers" in get_user(services.db, "bob")["roles"]


def test_names_that_cannot_exist_are_404_pages_for_everyone(app, services, team):
    permissions.grant(services.db, USER, "bob", "/pulp/api/v2/", [READ])
    bob = _client(app, "bob")
    for url in ("/console/people/roles/a%20b", "/console/people/users/a%20b", "/console/repositories/a%20b/access"):
        response = bob.get(url)
        assert response.status_code == 404, url
        assert "There is no" in response.get_data(as_text=True)
