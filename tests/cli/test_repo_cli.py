"""``registry-admin repo ...``: repositories by registry name, protection that Crane learns by a publish."""
from __future__ import annotations

from tests.cli.conftest import json_output, one_error_line
from tests.images import build_oci_layout


def fields(text: str) -> dict[str, str]:
    """``Label:  value`` lines of a show command as a dict."""
    return {label.strip(): value.strip() for label, _, value in (line.partition(":") for line in text.splitlines())}


def test_repo_create_then_show(run_cli, server):
    created = run_cli("repo", "create", "team/app", "--description", "the app")
    assert created.exit_code == 0, created.output
    assert "team/app" in created.stdout and "team-app" in created.stdout

    shown = run_cli("repo", "show", "team/app")
    assert shown.exit_code == 0, shown.output
    values = fields(shown.stdout)
    assert values["Name"] == "team/app" and values["ID"] == "team-app"
    assert values["Description"] == "the app"
    assert values["Protected"].startswith("no")
    assert values["Tags"] == "0" and values["Last published"] == "-"

    repo = json_output(run_cli("repo", "show", "team/app", "-o", "json"))
    assert repo["id"] == "team-app" and repo["protected"] is False and repo["tag_count"] == 0


def test_repo_create_with_id_and_protected(run_cli, server):
    result = run_cli("repo", "create", "team/app", "--id", "app", "--protected")
    assert result.exit_code == 0, result.output
    repo = server.repository("team/app")
    assert repo is not None and repo["id"] == "app" and repo["protected"] is True


def test_repo_create_twice_is_one_line(run_cli):
    run_cli("repo", "create", "team/app")
    line = one_error_line(run_cli("repo", "create", "team/app"))
    assert "already exists" in line and "409" in line


def test_repo_create_invalid_name_is_one_line(run_cli, server):
    assert "invalid repository name" in one_error_line(run_cli("repo", "create", "Team/App"))
    assert server.repository_names() == []


def test_repo_update_protected_makes_show_say_protected_and_publishes(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    assert run_cli("push", "team/app:v1", "--archive", str(layout)).exit_code == 0
    published_before = server.repository("team/app")["last_published"]

    result = run_cli("repo", "update", "team/app", "--protected")
    assert result.exit_code == 0, result.output
    assert "protected" in result.stdout
    assert fields(run_cli("repo", "show", "team/app").stdout)["Protected"].startswith("yes")
    repo = server.repository("team/app")
    assert repo["protected"] is True
    assert repo["last_published"] != published_before, "the change was published for Crane"

    opened = run_cli("repo", "update", "team/app", "--public", "--description", "open")
    assert opened.exit_code == 0, opened.output
    repo = json_output(run_cli("repo", "show", "team/app", "-o", "json"))
    assert repo["protected"] is False and repo["description"] == "open"


def test_repo_update_description_only_needs_no_task(run_cli, server):
    run_cli("repo", "create", "team/app")
    result = run_cli("repo", "update", "team/app", "--description", "new words")
    assert result.exit_code == 0, result.output
    assert server.repository("team/app")["description"] == "new words"


def test_repo_update_with_nothing_to_change_is_a_usage_error(run_cli):
    result = run_cli("repo", "update", "team/app")
    assert result.exit_code == 2
    assert "nothing to change" in one_error_line(result)


def test_repo_list_is_the_list_repos_table(run_cli, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    run_cli("push", "team/app:v1", "--archive", str(layout))
    run_cli("repo", "create", "tools/db")
    listed = run_cli("repo", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == run_cli("list", "repos").stdout
    assert {repo["name"] for repo in json_output(run_cli("repo", "list", "-o", "json"))} == {"team/app", "tools/db"}


def test_repo_delete_needs_yes_then_removes_it(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    run_cli("push", "team/app:v1", "--archive", str(layout))
    assert "--yes" in one_error_line(run_cli("repo", "delete", "team/app"))
    assert server.repository_names() == ["team/app"]

    deleted = run_cli("repo", "delete", "team/app", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted repository team/app" in deleted.stdout
    assert server.repository_names() == []
    assert "no repository named 'team/app'" in one_error_line(run_cli("repo", "show", "team/app"))


def test_repo_show_unknown_is_one_line(run_cli, server):
    assert "no repository named 'no/such'" in one_error_line(run_cli("repo", "show", "no/such"))
