"""``registry-admin permission grant/revoke/list``: what a user or role may do, and that it takes effect."""
from __future__ import annotations

from tests.cli.conftest import json_output, one_error_line

REPOS = "/pulp/api/v2/repositories/"
BOB = {"REGISTRY_ADMIN_USERNAME": "bob", "REGISTRY_ADMIN_PASSWORD": "bob-password-1"}


def table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_grant_to_a_role_is_listed(run_cli):
    run_cli("role", "create", "r")
    granted = run_cli("permission", "grant", "--role", "r", "--resource", f"{REPOS}x/", "--ops", "read,update")
    assert granted.exit_code == 0, granted.output
    assert "READ, UPDATE" in granted.stdout

    listed = run_cli("permission", "list")
    assert listed.exit_code == 0, listed.output
    rows = table_rows(listed.stdout)
    assert rows[0] == ["RESOURCE", "GRANTED", "TO", "OPERATIONS"]
    assert [f"{REPOS}x/", "role", "r", "READ,", "UPDATE"] in rows[1:]

    entries = json_output(run_cli("permission", "list", "--resource", f"{REPOS}x/", "-o", "json"))
    assert entries == [{"resource": f"{REPOS}x/", "user": None, "role": "r", "operations": ["READ", "UPDATE"]}]
    assert json_output(run_cli("role", "show", "r", "-o", "json"))["permissions"] == [
        {"resource": f"{REPOS}x/", "operations": ["READ", "UPDATE"]}]


def test_ops_are_case_insensitive_and_all_means_every_operation(run_cli):
    run_cli("user", "create", "bob", "--password", BOB["REGISTRY_ADMIN_PASSWORD"])
    assert run_cli("permission", "grant", "--user", "bob", "--resource", "/", "--ops", "Read, DELETE").exit_code == 0
    assert run_cli("permission", "grant", "--user", "bob", "--resource", REPOS, "--ops", "ALL").exit_code == 0
    entries = {entry["resource"]: entry for entry in json_output(run_cli("permission", "list", "-o", "json"))
               if entry["user"] == "bob"}
    assert entries["/"]["operations"] == ["READ", "DELETE"]
    assert entries[REPOS]["operations"] == ["CREATE", "READ", "UPDATE", "DELETE", "EXECUTE"]


def test_revoke_takes_away_only_what_it_names(run_cli):
    run_cli("role", "create", "r")
    run_cli("permission", "grant", "--role", "r", "--resource", REPOS, "--ops", "read,update,delete")
    revoked = run_cli("permission", "revoke", "--role", "r", "--resource", REPOS, "--ops", "update,delete")
    assert revoked.exit_code == 0, revoked.output
    assert json_output(run_cli("permission", "list", "--resource", REPOS, "-o", "json"))[0]["operations"] == ["READ"]

    emptied = run_cli("permission", "revoke", "--role", "r", "--resource", REPOS, "--ops", "all")
    assert emptied.exit_code == 0, emptied.output
    assert "nothing" in emptied.stdout
    assert json_output(run_cli("permission", "list", "--resource", REPOS, "-o", "json")) == []
    assert "No permissions" in run_cli("permission", "list", "--resource", REPOS).stdout


def test_exactly_one_of_user_and_role_is_a_one_line_usage_error(run_cli, server):
    server.log.clear()
    for who in ([], ["--user", "bob", "--role", "r"]):
        result = run_cli("permission", "grant", *who, "--resource", REPOS, "--ops", "read")
        assert result.exit_code == 2
        assert "exactly one of --user" in one_error_line(result)
    assert not [path for _, path in server.log.requests if "permissions" in path], "nothing was sent"


def test_unknown_operation_is_a_one_line_usage_error(run_cli):
    result = run_cli("permission", "grant", "--role", "r", "--resource", REPOS, "--ops", "read,pull")
    assert result.exit_code == 2
    assert "unknown operation 'pull'" in one_error_line(result)


def test_unknown_role_or_bad_resource_is_the_servers_one_line(run_cli):
    assert "no-such" in one_error_line(run_cli("permission", "grant", "--role", "no-such", "--resource", REPOS,
                                               "--ops", "read"))
    run_cli("role", "create", "r")
    assert "resource" in one_error_line(run_cli("permission", "grant", "--role", "r", "--resource", "not a path",
                                                "--ops", "read"))


def test_repo_option_stands_for_the_repository_path(run_cli):
    assert run_cli("repo", "create", "team/app").exit_code == 0
    run_cli("user", "create", "bob", "--password", BOB["REGISTRY_ADMIN_PASSWORD"])
    granted = run_cli("permission", "grant", "--user", "bob", "--repo", "team/app", "--ops", "read")
    assert granted.exit_code == 0, granted.output
    entries = json_output(run_cli("permission", "list", "--repo", "team/app", "-o", "json"))
    assert entries == [{"resource": f"{REPOS}team-app/", "user": "bob", "role": None, "operations": ["READ"]}]
    assert "no repository named 'no/such'" in one_error_line(
        run_cli("permission", "grant", "--user", "bob", "--repo", "no/such", "--ops", "read"))
    assert run_cli("permission", "grant", "--user", "bob", "--repo", "team/app", "--resource", REPOS,
                   "--ops", "read").exit_code == 2


def test_a_grant_takes_effect_and_a_missing_one_is_refused(run_cli):
    run_cli("repo", "create", "team/app")
    run_cli("user", "create", "bob", "--password", BOB["REGISTRY_ADMIN_PASSWORD"])
    # Without READ the repository is not even listed to bob (the server filters what he may read).
    assert "no repository named 'team/app'" in one_error_line(run_cli("repo", "show", "team/app", env=BOB))
    assert "403" in one_error_line(run_cli("user", "list", env=BOB))

    run_cli("permission", "grant", "--user", "bob", "--repo", "team/app", "--ops", "read")
    shown = run_cli("repo", "show", "team/app", env=BOB)
    assert shown.exit_code == 0, shown.output
    assert "403" in one_error_line(run_cli("repo", "create", "team/other", env=BOB))
    assert "403" in one_error_line(run_cli("repo", "update", "team/app", "--protected", env=BOB))

    run_cli("permission", "revoke", "--user", "bob", "--repo", "team/app", "--ops", "read")
    assert "no repository named" in one_error_line(run_cli("repo", "show", "team/app", env=BOB))
