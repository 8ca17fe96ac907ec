"""``registry-admin user ...``, ``role ...`` and ``whoami`` against the real admin API."""
from __future__ import annotations

from tests.cli.conftest import json_output, one_error_line
from tests.conftest import ADMIN_LOGIN

BOB_PASSWORD = "bob-password-1"


def as_bob(password: str = BOB_PASSWORD) -> dict[str, str | None]:
    return {"REGISTRY_ADMIN_USERNAME": "bob", "REGISTRY_ADMIN_PASSWORD": password}


def test_user_created_with_a_role_shows_the_role(run_cli):
    assert run_cli("role", "create", "readers").exit_code == 0
    created = run_cli("user", "create", "bob", "--password", BOB_PASSWORD, "--name", "Bob", "--role", "readers")
    assert created.exit_code == 0, created.output
    assert "Created user bob" in created.stdout

    user = json_output(run_cli("user", "show", "bob", "--output", "json"))
    assert user["login"] == "bob" and user["name"] == "Bob" and user["source"] == "local"
    assert "readers" in user["roles"]
    assert not [key for key in user if "password" in key or "hash" in key], "no password or hash is shown"

    table = run_cli("user", "show", "bob")
    assert table.exit_code == 0, table.output
    assert "Roles:" in table.stdout and "readers" in table.stdout


def test_user_list_shows_every_user_with_roles(run_cli):
    run_cli("role", "create", "readers")
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD, "--role", "readers")
    result = run_cli("user", "list")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.strip().splitlines()]
    assert rows[0] == ["LOGIN", "NAME", "SOURCE", "ROLES"]
    by_login = {row[0]: row for row in rows[1:]}
    assert set(by_login) == {ADMIN_LOGIN, "bob"}
    assert by_login["bob"][-1] == "readers"
    assert {user["login"] for user in json_output(run_cli("user", "list", "-o", "json"))} == {ADMIN_LOGIN, "bob"}


def test_missing_password_without_a_terminal_is_one_line_and_creates_nothing(run_cli):
    result = run_cli("user", "create", "bob")
    assert result.exit_code == 1
    assert one_error_line(result) == "registry-admin: error: no password: pass --password"
    assert "does not exist" in one_error_line(run_cli("user", "show", "bob"))


def test_password_is_asked_twice_and_hidden_when_interactive(run_cli):
    result = run_cli("--interactive", "user", "create", "bob", input=f"{BOB_PASSWORD}\n{BOB_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert BOB_PASSWORD not in result.output
    assert "Repeat for confirmation" in result.output
    assert json_output(run_cli("whoami", "-o", "json", env=as_bob()))["login"] == "bob"


def test_unknown_role_is_one_line_error(run_cli):
    line = one_error_line(run_cli("user", "create", "bob", "--password", BOB_PASSWORD, "--role", "no-such-role"))
    assert "no-such-role" in line and "roles" in line
    assert "does not exist" in one_error_line(run_cli("user", "show", "bob"))


def test_existing_user_is_one_line_error(run_cli):
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD)
    line = one_error_line(run_cli("user", "create", "bob", "--password", BOB_PASSWORD))
    assert "already exists" in line and "409" in line


def test_user_update_changes_roles_name_and_password(run_cli):
    for role in ("readers", "writers"):
        run_cli("role", "create", role)
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD, "--role", "readers")
    result = run_cli("user", "update", "bob", "--add-role", "writers", "--remove-role", "readers",
                     "--name", "Bob B", "--password", "new-password-2")
    assert result.exit_code == 0, result.output
    user = json_output(run_cli("user", "show", "bob", "-o", "json"))
    assert user["roles"] == ["writers"] and user["name"] == "Bob B"
    assert json_output(run_cli("whoami", "-o", "json", env=as_bob("new-password-2")))["login"] == "bob"
    assert "refused the credentials" in one_error_line(run_cli("whoami", env=as_bob()))


def test_user_update_prompts_for_the_password_twice(run_cli):
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD)
    result = run_cli("--interactive", "user", "update", "bob", "--prompt-password", input="other-pass\nother-pass\n")
    assert result.exit_code == 0, result.output
    assert json_output(run_cli("whoami", "-o", "json", env=as_bob("other-pass")))["login"] == "bob"
    assert one_error_line(run_cli("user", "update", "bob", "--prompt-password")) == \
        "registry-admin: error: no password: pass --password"


def test_user_update_with_nothing_to_change_is_a_usage_error(run_cli):
    result = run_cli("user", "update", "bob")
    assert result.exit_code == 2
    assert "nothing to change" in one_error_line(result)


def test_user_delete_needs_yes_without_a_terminal(run_cli):
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD)
    assert "--yes" in one_error_line(run_cli("user", "delete", "bob"))
    assert run_cli("user", "show", "bob").exit_code == 0, "nothing was deleted"

    declined = run_cli("--interactive", "user", "delete", "bob", input="n\n")
    assert declined.exit_code == 1
    assert run_cli("user", "show", "bob").exit_code == 0

    deleted = run_cli("user", "delete", "bob", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "does not exist" in one_error_line(run_cli("user", "show", "bob"))


def test_the_last_super_user_cannot_be_deleted_or_removed(run_cli):
    line = one_error_line(run_cli("user", "delete", ADMIN_LOGIN, "--yes"))
    assert "last" in line and "409" in line
    line = one_error_line(run_cli("role", "remove-user", "super-users", ADMIN_LOGIN))
    assert "last" in line
    assert json_output(run_cli("whoami", "-o", "json"))["login"] == ADMIN_LOGIN


def test_role_create_list_show_and_delete(run_cli):
    result = run_cli("role", "create", "readers", "--description", "may read everything")
    assert result.exit_code == 0, result.output
    listed = run_cli("role", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[0].split() == ["NAME", "BUILT-IN", "USERS", "DESCRIPTION"]
    assert any(line.startswith("readers ") and "may read everything" in line for line in listed.stdout.splitlines())
    roles = {role["name"]: role for role in json_output(run_cli("role", "list", "-o", "json"))}
    assert roles["super-users"]["builtin"] is True and roles["readers"]["builtin"] is False

    shown = run_cli("role", "show", "readers")
    assert shown.exit_code == 0, shown.output
    assert "may read everything" in shown.stdout and "Permissions: none" in shown.stdout

    assert "--yes" in one_error_line(run_cli("role", "delete", "readers"))
    assert run_cli("role", "delete", "readers", "--yes").exit_code == 0
    assert "404" in one_error_line(run_cli("role", "show", "readers"))


def test_builtin_role_cannot_be_deleted(run_cli):
    line = one_error_line(run_cli("role", "delete", "super-users", "--yes"))
    assert "409" in line


def test_role_add_and_remove_user_change_the_users_roles(run_cli):
    run_cli("role", "create", "readers")
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD)
    added = run_cli("role", "add-user", "readers", "bob")
    assert added.exit_code == 0, added.output
    assert json_output(run_cli("user", "show", "bob", "-o", "json"))["roles"] == ["readers"]
    assert json_output(run_cli("role", "show", "readers", "-o", "json"))["users"] == ["bob"]

    removed = run_cli("role", "remove-user", "readers", "bob")
    assert removed.exit_code == 0, removed.output
    assert json_output(run_cli("user", "show", "bob", "-o", "json"))["roles"] == []


def test_role_add_user_for_unknown_user_or_role_is_one_line(run_cli):
    run_cli("role", "create", "readers")
    assert "nobody" in one_error_line(run_cli("role", "add-user", "readers", "nobody"))
    assert "no-such" in one_error_line(run_cli("role", "add-user", "no-such", ADMIN_LOGIN))


def test_whoami_shows_login_roles_and_permissions(run_cli):
    run_cli("role", "create", "readers")
    run_cli("user", "create", "bob", "--password", BOB_PASSWORD, "--role", "readers")
    run_cli("permission", "grant", "--role", "readers", "--resource", "/pulp/api/v2/repositories/", "--ops", "read")
    result = run_cli("whoami", env=as_bob())
    assert result.exit_code == 0, result.output
    assert "Login:" in result.stdout and "bob" in result.stdout
    assert "readers" in result.stdout
    assert any(line.split() == ["/pulp/api/v2/repositories/", "READ"] for line in result.stdout.splitlines())
    me = json_output(run_cli("whoami", "-o", "json", env=as_bob()))
    assert me["roles"] == ["readers"]
    assert {"resource": "/pulp/api/v2/repositories/", "operations": ["READ"]} in me["permissions"]

    admin = json_output(run_cli("whoami", "-o", "json"))
    assert admin["login"] == ADMIN_LOGIN and "super-users" in admin["roles"]
