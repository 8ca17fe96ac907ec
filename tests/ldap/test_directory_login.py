"""Logins against a real slapd: who gets in, with which name, groups and roles; who does not."""
from __future__ import annotations

import logging

import pytest

from pulp_registry.ldap_auth import DirectoryUser, directory_login
from tests.ldap_server import PEOPLE_DN, USERS, Slapd, group_dn, user_dn
from tests.servers import free_port

ALICE_PASSWORD = USERS["alice"][1]


def test_right_password_gives_the_users_dn_name_and_direct_groups(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(), "alice", ALICE_PASSWORD)

    assert user == DirectoryUser(login="alice", dn=user_dn("alice"), name="Alice Liddell",
                                 groups=(group_dn("developers"),), roles=())


def test_roles_come_from_groups_by_cn_or_by_dn_plus_default_roles(slapd: Slapd) -> None:
    settings = slapd.settings(group_roles={"Developers": ["push", "pull"],
                                           "CN=Admins, OU=Groups, DC=example, DC=org": ["admin"],
                                           "nobody-is-in-this-group": ["root"]},
                              default_roles=["pull", "read"])

    alice = directory_login(settings, "alice", ALICE_PASSWORD)
    carol = directory_login(settings, "carol", USERS["carol"][1])

    assert alice is not None and alice.roles == ("pull", "push", "read")
    assert carol is not None and carol.roles == ("admin", "pull", "read")


def test_wrong_password_is_refused(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "alice", "not-" + ALICE_PASSWORD) is None


def test_another_users_password_is_refused(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "alice", USERS["bob"][1]) is None


def test_unknown_user_is_refused(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "mallory", ALICE_PASSWORD) is None


def test_empty_password_is_refused_without_asking_the_directory(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "alice", "") is None
    # Nothing listens on this port: an attempt to bind would be DirectoryUnavailable, not None.
    assert directory_login(slapd.settings(url=f"ldap://127.0.0.1:{free_port()}"), "alice", "") is None


def test_empty_login_is_refused(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "", ALICE_PASSWORD) is None


@pytest.mark.parametrize("login", ["*", "a*", "al*", "*)(uid=*", "alice)(|(uid=*", "alice)(uid=alice",
                                   "*)(|(objectClass=*", "alice\\", "alice\x00"])
def test_filter_metacharacters_in_the_login_never_log_in_as_alice(slapd: Slapd, login: str) -> None:
    assert directory_login(slapd.settings(), login, ALICE_PASSWORD) is None


def test_group_filter_escapes_the_login_and_the_dn(slapd: Slapd) -> None:
    settings = slapd.settings(group_filter="(|(member={dn})(memberUid={login}))", nested_groups=True)

    user = directory_login(settings, "o(brien)", USERS["o(brien)"][1])

    assert user is not None and user.groups == (group_dn("engineers"),)


def test_user_whose_login_and_dn_hold_parentheses_logs_in_with_groups(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(group_roles={"engineers": ["push"]}), "o(brien)", USERS["o(brien)"][1])

    assert user is not None
    assert (user.dn, user.name, user.groups, user.roles) == (
        user_dn("o(brien)"), "Miles O'Brien", (group_dn("engineers"),), ("push",))


def test_login_matching_two_directory_entries_is_refused(slapd: Slapd) -> None:
    assert directory_login(slapd.settings(), "twin", USERS["twin"][1]) is None


def test_login_is_returned_as_given(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(), "ALICE", ALICE_PASSWORD)

    assert user is not None and (user.login, user.dn) == ("ALICE", user_dn("alice"))


def test_without_nested_groups_only_direct_groups_count(slapd: Slapd) -> None:
    settings = slapd.settings(group_roles={"company": ["pull"], "developers": ["push"]})

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and (user.groups, user.roles) == ((group_dn("developers"),), ("push",))


def test_nested_groups_give_the_roles_of_groups_two_levels_up(slapd: Slapd) -> None:
    settings = slapd.settings(nested_groups=True, group_roles={"company": ["pull"], "developers": ["push"]})

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None
    assert user.groups == tuple(sorted(group_dn(cn) for cn in ("company", "developers", "staff")))
    assert user.roles == ("pull", "push")


def test_nested_groups_that_contain_each_other_end(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(nested_groups=True, group_roles={"loop-b": ["pull"]}),
                           "dave", USERS["dave"][1])

    assert user is not None and user.groups == (group_dn("loop-a"), group_dn("loop-b"))
    assert user.roles == ("pull",)


def test_group_filter_may_use_the_login_for_posix_groups(slapd: Slapd) -> None:
    settings = slapd.settings(group_filter="(|(member={dn})(memberUid={login}))", group_roles={"ops": ["admin"]})

    user = directory_login(settings, "bob", USERS["bob"][1])

    assert user is not None
    assert user.groups == (group_dn("developers"), group_dn("ops")) and user.roles == ("admin",)


def test_without_group_search_base_only_default_roles_apply(slapd: Slapd) -> None:
    settings = slapd.settings(group_search_base="", group_roles={"developers": ["push"]}, default_roles=["pull"])

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and (user.groups, user.roles) == ((), ("pull",))


def test_missing_name_attribute_gives_an_empty_name(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(name_attribute="displayName"), "alice", ALICE_PASSWORD)

    assert user is not None and user.name == ""


def test_anonymous_search_works_when_the_directory_allows_it(slapd: Slapd) -> None:
    settings = slapd.settings(bind_dn="", bind_password="", nested_groups=True, group_roles={"staff": ["push"]})

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and user.dn == user_dn("alice") and user.roles == ("push",)
    assert directory_login(settings, "alice", "wrong") is None


def test_a_membership_change_is_seen_at_the_next_login(slapd: Slapd) -> None:
    settings = slapd.settings(group_roles={"admins": ["admin"]})
    before = directory_login(settings, "bob", USERS["bob"][1])
    slapd.add_member("admins", user_dn("bob"))
    try:
        during = directory_login(settings, "bob", USERS["bob"][1])
    finally:
        slapd.remove_member("admins", user_dn("bob"))
    after = directory_login(settings, "bob", USERS["bob"][1])

    assert before is not None and during is not None and after is not None
    assert (before.roles, during.roles, after.roles) == ((), ("admin",), ())
    assert group_dn("admins") in during.groups and group_dn("admins") not in after.groups


def test_user_search_covers_the_subtree_below_the_base(slapd: Slapd) -> None:
    user = directory_login(slapd.settings(user_search_base=PEOPLE_DN, user_filter="(&(uid={login})(cn=Twin Two))"),
                           "twin", USERS["twin"][1])

    assert user is not None and user.dn == f"uid=twin,ou=contractors,{PEOPLE_DN}"


def test_refused_login_is_logged_with_the_login_and_without_the_password(
        slapd: Slapd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pulp_registry.ldap_auth")

    assert directory_login(slapd.settings(), "alice", "a-wrong-password-123") is None

    assert "alice" in caplog.text
    assert "a-wrong-password-123" not in caplog.text
    assert all(record.levelno <= logging.INFO for record in caplog.records)


def test_group_roles_dn_key_matches_only_that_dn_not_another_group_with_the_same_cn(slapd: Slapd) -> None:
    settings = slapd.settings(group_roles={"cn=developers,ou=other,dc=example,dc=org": ["push"]})

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and user.groups == (group_dn("developers"),) and user.roles == ()
