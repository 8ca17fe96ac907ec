"""``registry-admin copy``, ``remove`` and ``repo history``: promote, take away, and see what happened."""
from __future__ import annotations

import pytest

from tests.cli.conftest import json_output, one_error_line
from tests.images import build_oci_layout, layout_manifest

PULL_HOST = "127.0.0.1:5000"


@pytest.fixture
def dev_app(run_cli, tmp_path):
    """dev/app with tags 1.2 and 1.3 (two images) and v2.0 (same image as 1.3); their digests by tag."""
    first = build_oci_layout(tmp_path, "v1", layers=[{"one.txt": b"one"}])
    second = build_oci_layout(tmp_path, "v1", layers=[{"two.txt": b"two"}])
    for reference, layout in (("dev/app:1.2", first), ("dev/app:1.3", second), ("dev/app:v2.0", second)):
        result = run_cli("push", reference, "--archive", str(layout))
        assert result.exit_code == 0, result.output
    return {"1.2": layout_manifest(first, "v1")[0], "1.3": layout_manifest(second, "v1")[0]}


def tags_of(server, name: str) -> dict[str, str]:
    repo = server.repository(name)
    assert repo is not None, f"no repository {name}"
    return {tag["name"]: tag["manifest_digest"] for tag in server.api(f"/pulp/api/v2/repositories/{repo['id']}/tags/")}


def test_copy_one_tag_prints_what_was_copied_and_the_pull_reference(run_cli, server, dev_app):
    result = run_cli("copy", "dev/app:1.2", "prod/app")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{PULL_HOST}/prod/app:1.2"]
    assert "Copied 1 tag(s) (1.2) from dev/app to prod/app" in result.stderr
    assert tags_of(server, "prod/app") == {"1.2": dev_app["1.2"]}
    assert server.repository("prod/app")["last_published"], "the copy is published before the command ends"


def test_copy_under_another_tag_and_by_digest(run_cli, server, dev_app):
    renamed = run_cli("copy", "dev/app:1.2", "prod/app:1.2-prod")
    assert renamed.exit_code == 0, renamed.output
    assert renamed.stdout.strip() == f"{PULL_HOST}/prod/app:1.2-prod"
    by_digest = run_cli("copy", f"dev/app@{dev_app['1.3']}", "prod/app:stable")
    assert by_digest.exit_code == 0, by_digest.output
    assert tags_of(server, "prod/app") == {"1.2-prod": dev_app["1.2"], "stable": dev_app["1.3"]}


def test_copy_several_tags_or_a_pattern(run_cli, server, dev_app):
    several = run_cli("copy", "dev/app:1.2", "dev/app:1.3", "prod/app")
    assert several.exit_code == 0, several.output
    assert sorted(several.stdout.split()) == [f"{PULL_HOST}/prod/app:1.2", f"{PULL_HOST}/prod/app:1.3"]
    pattern = run_cli("copy", "dev/app", "qa/app", "--tags", "v2.*")
    assert pattern.exit_code == 0, pattern.output
    assert tags_of(server, "qa/app") == {"v2.0": dev_app["1.3"]}


def test_copy_accepts_the_pull_reference_push_printed(run_cli, server, dev_app):
    result = run_cli("copy", f"{PULL_HOST}/dev/app:1.2", "prod/app")
    assert result.exit_code == 0, result.output
    assert "1.2" in tags_of(server, "prod/app")


def test_copy_no_wait_says_how_to_follow_the_task(run_cli, server, dev_app):
    result = run_cli("copy", "dev/app:1.2", "prod/app", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "registry-admin tasks wait" in result.stderr and result.stdout == ""


def test_copy_errors_are_one_line(run_cli, server, dev_app):
    assert "same repository" in one_error_line(run_cli("copy", "dev/app:1.2", "qa/app:1.3", "prod/app"))
    assert "does not exist" in one_error_line(run_cli("copy", "no/such:1", "prod/app"))
    assert "nope" in one_error_line(run_cli("copy", "dev/app:nope", "prod/app"))
    assert server.repository("prod/app") is None or tags_of(server, "prod/app") == {}


def test_remove_a_tag_publishes_and_keeps_the_image_of_other_tags(run_cli, server, dev_app):
    result = run_cli("remove", "dev/app:1.3")
    assert result.exit_code == 0, result.output
    assert "Removed from dev/app: 1 tag(s) 1.3" in result.stdout
    assert "Published dev/app" in result.stderr
    assert tags_of(server, "dev/app") == {"1.2": dev_app["1.2"], "v2.0": dev_app["1.3"]}


def test_remove_a_manifest_takes_its_tags_and_needs_yes_only_on_a_terminal(run_cli, server, dev_app):
    declined = run_cli("--interactive", "remove", f"dev/app@{dev_app['1.3']}", input="n\n")
    assert declined.exit_code == 1 and "did not remove" in one_error_line(declined)
    assert "1.3" in tags_of(server, "dev/app")

    result = run_cli("remove", f"dev/app@{dev_app['1.3']}")  # no terminal: no question
    assert result.exit_code == 0, result.output
    assert dev_app["1.3"] in result.stdout
    assert tags_of(server, "dev/app") == {"1.2": dev_app["1.2"]}


def test_remove_unknown_tag_removes_nothing(run_cli, server, dev_app):
    line = one_error_line(run_cli("remove", "dev/app:1.2", "dev/app:nope"))
    assert "nope" in line
    assert set(tags_of(server, "dev/app")) == {"1.2", "1.3", "v2.0"}


def test_remove_needs_a_tag_or_digest_in_one_repository(run_cli, server, dev_app):
    assert "name a tag or a digest" in one_error_line(run_cli("remove", "dev/app"))
    assert "one repository at a time" in one_error_line(run_cli("remove", "dev/app:1.2", "qa/app:1"))


def test_repo_history_lists_pushes_copies_and_removals_newest_first(run_cli, server, dev_app):
    assert run_cli("copy", "dev/app:1.2", "prod/app").exit_code == 0
    assert run_cli("remove", "dev/app:1.3").exit_code == 0
    result = run_cli("repo", "history", "dev/app")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "ACTION", "USER", "TASK", "DETAILS"]
    actions = [line.split()[2] for line in lines[1:]]  # TIME is two words
    assert "remove" in actions and "push" in actions
    assert actions.index("remove") < actions.index("push"), "newest first"
    events = json_output(run_cli("repo", "history", "dev/app", "--limit", "1", "-o", "json"))
    assert len(events) == 1 and events[0]["user"] == "admin"
    pushes = json_output(run_cli("repo", "history", "dev/app", "--action", "push", "-o", "json"))
    assert pushes and {event["action"] for event in pushes} == {"push"}
