"""Pulp's permission model as plain functions: paths, grants, roles, super-users."""
from __future__ import annotations

import pytest

from pulp_registry import permissions, roles, users
from pulp_registry.permissions import READ, ROLE, SUPER_USERS, UPDATE, USER, GrantError


@pytest.fixture
def db(services):
    return services.db


def make_user(db, login: str, *role_names: str) -> dict:
    return users.create_user(db, login, f"{login}-password", roles=list(role_names), rounds=4)


def test_a_grant_covers_its_path_and_everything_below_it(db):
    alice = make_user(db, "alice")
    permissions.grant(db, USER, "alice", "/pulp/api/v2/repositories/my-app", ["read"])
    assert permissions.is_authorized(db, alice, READ, "/pulp/api/v2/repositories/my-app/")
    assert permissions.is_authorized(db, alice, READ, "/pulp/api/v2/repositories/my-app/tags/latest/")
    assert not permissions.is_authorized(db, alice, READ, "/pulp/api/v2/repositories/my-app-2/")
    assert not permissions.is_authorized(db, alice, READ, "/pulp/api/v2/repositories/")
    assert not permissions.is_authorized(db, alice, UPDATE, "/pulp/api/v2/repositories/my-app/")


def test_a_grant_on_the_root_covers_everything(db):
    bob = make_user(db, "bob")
    permissions.grant(db, USER, "bob", "/", ["READ"])
    assert permissions.is_authorized(db, bob, READ, "/pulp/api/v2/users/alice/")


def test_roles_bundle_grants_and_lose_them_with_the_membership(db):
    roles.create_role(db, "readers")
    permissions.grant(db, ROLE, "readers", "/pulp/api/v2/repositories/", ["READ"])
    carol = make_user(db, "carol", "readers")
    assert permissions.is_authorized(db, carol, READ, "/pulp/api/v2/repositories/x/")
    roles.remove_member(db, "readers", "carol")
    assert not permissions.is_authorized(db, users.get_user(db, "carol"), READ, "/pulp/api/v2/repositories/x/")


def test_super_users_may_do_everything_without_any_grant(db):
    root = make_user(db, "root", SUPER_USERS)
    for operation in permissions.OPERATIONS:
        assert permissions.is_authorized(db, root, operation, "/anything/at/all/")


def test_revoking_the_last_operation_removes_the_permission(db):
    make_user(db, "dave")
    permissions.grant(db, USER, "dave", "/pulp/api/v2/tasks/", ["READ", "DELETE"])
    left = permissions.revoke(db, USER, "dave", "/pulp/api/v2/tasks/", ["delete"])
    assert left["operations"] == ["READ"]
    assert permissions.revoke(db, USER, "dave", "/pulp/api/v2/tasks/", ["READ"])["operations"] == []
    assert db.permissions.count_documents({"subject": "dave"}) == 0


@pytest.mark.parametrize("resource", ["", "relative/path", "/a/../b/", "/a/./b", "/a b/", None, 42])
def test_a_resource_must_be_an_absolute_path_without_dot_segments(db, resource):
    with pytest.raises(GrantError) as raised:
        permissions.grant(db, USER, "admin", resource, ["READ"])
    assert raised.value.field == "resource"


def test_an_unknown_operation_is_named(db):
    with pytest.raises(GrantError, match="'FLY'"):
        permissions.grant(db, USER, "admin", "/", ["READ", "FLY"])


def test_super_users_never_loses_its_last_member(db):
    with pytest.raises(roles.RoleConflict, match="last member"):
        roles.remove_member(db, SUPER_USERS, "admin")
    with pytest.raises(roles.RoleConflict, match="last member"):
        users.delete_user(db, "admin")
    with pytest.raises(roles.RoleConflict, match="built-in"):
        roles.delete_role(db, SUPER_USERS)
    make_user(db, "second", SUPER_USERS)
    roles.remove_member(db, SUPER_USERS, "admin")
    assert roles.members(db, SUPER_USERS) == ["second"]


def test_a_directory_change_cannot_take_super_users_from_the_last_member(db):
    from types import SimpleNamespace

    ldap_admin = SimpleNamespace(login="lisa", dn="uid=lisa,dc=x", name="Lisa", roles=(SUPER_USERS,))
    users.directory_user_logged_in(db, ldap_admin)
    users.delete_user(db, "admin")  # lisa holds super-users now, so admin may go
    demoted = SimpleNamespace(login="lisa", dn="uid=lisa,dc=x", name="Lisa", roles=())
    users.directory_user_logged_in(db, demoted)
    assert roles.members(db, SUPER_USERS) == ["lisa"]


def test_deleting_a_role_removes_its_grants_and_memberships(db):
    roles.create_role(db, "pushers")
    permissions.grant(db, ROLE, "pushers", "/pulp/api/v2/repositories/", ["UPDATE"])
    make_user(db, "erin", "pushers")
    roles.delete_role(db, "pushers")
    assert users.get_user(db, "erin")["roles"] == []
    assert permissions.list_permissions(db, subject_type=ROLE, subject="pushers") == []
    roles.create_role(db, "pushers")  # a new role of the same name starts with nothing
    assert roles.members(db, "pushers") == []


def test_user_documents_hold_no_growing_list_and_no_user_supplied_field_names(db):
    roles.create_role(db, "r1")
    make_user(db, "frank", "r1")
    for grant in range(50):
        permissions.grant(db, USER, "frank", f"/pulp/api/v2/repositories/repo-{grant}/", ["READ"])
    frank = users.get_user(db, "frank")
    assert set(frank) <= {"_id", "source", "name", "password_hash", "roles", "ldap_roles", "created", "updated"}
    assert db.permissions.count_documents({"subject": "frank"}) == 50
