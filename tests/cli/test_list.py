"""``registry-admin list repos`` and ``list NAME``: tables a person reads, JSON a script reads."""
from __future__ import annotations

import json

import pytest

from tests.cli.conftest import one_error_line
from tests.images import build_oci_layout, layout_manifest


@pytest.fixture
def pushed(run_cli, tmp_path):
    """team/app with tags 1.0 and latest (two images), and a second repository tools/db."""
    first = build_oci_layout(tmp_path, "v1")
    second = build_oci_layout(tmp_path, "v1")
    for reference, layout in (("team/app:1.0", first), ("team/app:latest", second), ("tools/db:v2", first)):
        result = run_cli("push", reference, "--archive", str(layout))
        assert result.exit_code == 0, result.output
    return {"1.0": layout_manifest(first, "v1")[0], "latest": layout_manifest(second, "v1")[0]}


def table_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_list_repos_prints_a_table_of_repositories(run_cli, pushed):
    result = run_cli("list", "repos")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["NAME", "ID", "TAGS", "SIZE", "LAST", "PUBLISHED"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"team/app", "tools/db"}
    assert by_name["team/app"][1:3] == ["team-app", "2"]
    assert by_name["tools/db"][1:3] == ["tools-db", "1"]
    assert by_name["team/app"][4] != "-", "a pushed repository has been published"


def test_list_repos_json_has_counts_and_names(run_cli, pushed):
    result = run_cli("list", "repos", "--output", "json")
    assert result.exit_code == 0, result.output
    repos = {repo["name"]: repo for repo in json.loads(result.stdout)}
    assert repos["team/app"]["tag_count"] == 2
    assert repos["team/app"]["id"] == "team-app"
    assert repos["tools/db"]["total_size"] > 0


def test_list_repos_with_no_repositories_says_how_to_push(run_cli, server):
    result = run_cli("list", "repos")
    assert result.exit_code == 0
    assert "No repositories yet" in result.stdout
    assert json.loads(run_cli("list", "repos", "-o", "json").stdout) == []


def test_list_name_prints_tags_with_short_digests_types_sizes_and_times(run_cli, pushed):
    result = run_cli("list", "team/app")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    assert rows[0] == ["TAG", "DIGEST", "TYPE", "SIZE", "PUSHED"]
    by_tag = {row[0]: row for row in rows[1:]}
    assert set(by_tag) == {"1.0", "latest"}
    for tag, digest in pushed.items():
        row = by_tag[tag]
        assert row[1] == digest.split(":")[1][:12]
        assert row[2] == "oci"
        assert row[4] in ("B", "KB", "MB"), row  # size is human readable: "<n> <unit>"
        assert row[5].count("-") == 2 and ":" in row[6]  # "YYYY-MM-DD HH:MM"


def test_list_name_json_has_full_digests(run_cli, pushed):
    result = run_cli("list", "team/app", "--output", "json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["repository"]["name"] == "team/app"
    assert {row["tag"]: row["digest"] for row in listed["tags"]} == pushed
    assert all(row["size"] > 0 and row["pushed"] for row in listed["tags"])


def test_list_unknown_name_is_one_line_error(run_cli, server):
    line = one_error_line(run_cli("list", "no/such"))
    assert "no repository named 'no/such'" in line


def test_list_invalid_name_is_one_line_error(run_cli, server):
    assert "invalid repository name" in one_error_line(run_cli("list", "Not/Valid"))


def test_list_with_wrong_credentials_is_one_line_error(run_cli, server):
    line = one_error_line(run_cli("list", "repos", env={"REGISTRY_ADMIN_USERNAME": "nobody"}))
    assert "refused the credentials of user 'nobody'" in line


def test_every_command_has_help_with_an_example(run_cli, server):
    for args in ([], ["push"], ["list"], ["list", "repos"], ["list", "team/app"], ["configure"]):
        result = run_cli(*args, "--help")
        assert result.exit_code == 0, (args, result.output)
        assert "Example" in result.stdout, args
        assert "registry-admin " in result.stdout
