"""``registry-admin repo create|update|show|sync`` with feeds, against the real admin app.

Upstream secrets come from stdin or a hidden prompt and never show in any output.
Syncs run the real engine against Debian's docker-registry (``tests/sync``'s ``upstream``).
"""
from __future__ import annotations

from typing import Any

from admin_client import feeds as cli_feeds
from tests.cli.conftest import json_output, one_error_line
from tests.cli.test_repo_cli import fields
from tests.feeds.conftest import make_certificate_pem

PASSWORD = "upstream-password-9"
TOKEN = "upstream-token-0123456789"




def test_create_with_a_feed_reads_the_password_from_stdin_and_never_prints_it(run_cli, server):
    result = run_cli("repo", "create", "mirror/nginx", "--feed", "https://docker.io", "--upstream-name", "nginx",
                     "--include-tags", "1.27*", "--include-tags", "latest", "--exclude-tags", "*-perl",
                     "--platform", "linux/amd64", "--mirror", "--sync-interval", "3600", "--max-downloads", "8",
                     "--requests-per-second", "2.5", "--no-referrers", "--no-publish",
                     "--upstream-username", "bob", "--upstream-password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "registry-1.docker.io library/nginx" in result.stdout
    assert PASSWORD not in result.output

    repo = server.repository("mirror/nginx")
    assert repo["feed"]["include_tags"] == ["1.27*", "latest"] and repo["feed"]["exclude_tags"] == ["*-perl"]
    assert (repo["feed"]["mode"], repo["feed"]["max_downloads"], repo["feed"]["requests_per_second"]) == \
        ("mirror", 8, 2.5)
    assert repo["feed"]["referrers"] is False and repo["feed"]["publish"] is False
    assert repo["feed"]["credentials"] == {"username": "bob", "secret_set": True}
    assert server.services.db.feed_credentials.find_one({"_id": "mirror-nginx"})["password"] == PASSWORD

    shown = run_cli("repo", "show", "mirror/nginx")
    assert shown.exit_code == 0 and PASSWORD not in shown.output
    values = fields(shown.stdout)
    assert values["Feed"] == "https://registry-1.docker.io library/nginx"
    assert values["Feed mode"] == "mirror"
    assert values["Feed tags"] == "all tags matching 1.27*, latest except *-perl (glob)"
    assert values["Feed platforms"] == "linux/amd64"
    assert values["Feed login"] == "bob (secret set)"
    assert values["Sync schedule"] == "every 1 h" and values["Next sync"] != "-"
    as_json = json_output(run_cli("repo", "show", "mirror/nginx", "-o", "json"))
    assert as_json["feed"]["credentials"]["secret_set"] is True and as_json["next_sync"]


def test_the_password_prompt_is_hidden(run_cli, server):
    result = run_cli("--interactive", "repo", "create", "team/app", "--feed", "https://registry.example.com",
                     "--upstream-username", "bob", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Password of bob at https://registry.example.com" in result.stderr
    assert PASSWORD not in result.output
    assert server.services.db.feed_credentials.find_one({"_id": "team-app"})["password"] == PASSWORD


def test_without_a_terminal_a_username_needs_the_password_on_stdin(run_cli, server):
    line = one_error_line(run_cli("--non-interactive", "repo", "create", "team/app", "--feed",
                                  "https://registry.example.com", "--upstream-username", "bob"))
    assert "--upstream-password-stdin" in line
    assert server.repository_names() == []


def test_a_token_from_stdin(run_cli, server):
    result = run_cli("repo", "create", "team/app", "--feed", "https://ghcr.io", "--upstream-name", "org/tool",
                     "--upstream-token-stdin", input=TOKEN)
    assert result.exit_code == 0, result.output
    assert server.services.db.feed_credentials.find_one({"_id": "team-app"})["token"] == TOKEN
    assert fields(run_cli("repo", "show", "team/app").stdout)["Feed login"] == "(token) (secret set)"


def test_feed_options_without_feed_and_invalid_settings_are_one_line(run_cli, server):
    assert "--feed" in one_error_line(run_cli("repo", "create", "team/app", "--include-tags", "v*"))
    line = one_error_line(run_cli("repo", "create", "team/app", "--feed", "ftp://registry.example.com"))
    assert "feed.url" in line or "https://" in line
    assert "sync_interval" in one_error_line(run_cli("repo", "create", "team/app", "--feed",
                                                     "https://registry.example.com", "--sync-interval", "10"))
    assert server.repository_names() == []


def test_update_changes_only_the_settings_given_and_can_remove_credentials_and_feed(run_cli, server, tmp_path):
    created = run_cli("repo", "create", "team/app", "--feed", "https://registry.example.com",
                      "--include-tags", "v*", "--upstream-token-stdin", input=TOKEN)
    assert created.exit_code == 0, created.output
    bundle = tmp_path / "ca.pem"
    bundle.write_text(make_certificate_pem())

    updated = run_cli("repo", "update", "team/app", "--sync-interval", "86400", "--platform", "linux/arm64/v8",
                      "--ca-bundle", str(bundle), "--no-tls-verify")
    assert updated.exit_code == 0, updated.output
    values = fields(run_cli("repo", "show", "team/app").stdout)
    assert values["Feed tags"] == "all tags matching v* (glob)"
    assert values["Feed platforms"] == "linux/arm64/v8"
    assert values["Feed TLS"] == "NOT verified, own CA bundle"
    assert values["Sync schedule"] == "every 1 d" and values["Feed login"] == "(token) (secret set)"

    assert run_cli("repo", "update", "team/app", "--all-tags", "--remove-upstream-credentials",
                   "--no-ca-bundle").exit_code == 0
    values = fields(run_cli("repo", "show", "team/app").stdout)
    assert values["Feed tags"] == "all tags" and values["Feed login"] == "anonymous"
    assert server.services.db.feed_credentials.count_documents({}) == 0

    invalid = one_error_line(run_cli("repo", "update", "team/app", "--sync-interval", "10"))
    assert "delta.feed.sync_interval" in invalid or "sync_interval" in invalid
    assert fields(run_cli("repo", "show", "team/app").stdout)["Sync schedule"] == "every 1 d"

    removed = run_cli("repo", "update", "team/app", "--remove-feed")
    assert removed.exit_code == 0 and "no feed" in removed.stdout
    assert fields(run_cli("repo", "show", "team/app").stdout)["Feed"].startswith("none")
    assert "--remove-feed" in one_error_line(run_cli("repo", "update", "team/app", "--remove-feed", "--mirror"))


def test_sync_of_a_repository_without_a_feed_says_how_to_set_one(run_cli):
    run_cli("repo", "create", "team/app")
    assert "--feed" in one_error_line(run_cli("repo", "sync", "team/app"))


def test_sync_from_an_upstream_nobody_answers_fails_with_the_reason(run_cli, closed_url):
    run_cli("repo", "create", "team/app", "--feed", closed_url)
    line = one_error_line(run_cli("repo", "sync", "team/app", "--timeout", "60"))
    assert "sync task" in line and "ended error" in line and closed_url.split("//")[1] in line


def test_sync_no_wait_names_the_task(run_cli, closed_url):
    run_cli("repo", "create", "team/app", "--feed", closed_url)
    result = run_cli("repo", "sync", "team/app", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "registry-admin tasks wait" in result.stderr


def fill(upstream: Any) -> dict[str, str]:
    """Three tags upstream; tag -> digest."""
    return {tag: upstream.push_image("team/app", tag, [f"layer of {tag}".encode()]) for tag in ("1.0", "1.1", "latest")}


def test_sync_dry_run_then_sync_print_what_changes(run_cli, upstream):
    fill(upstream)
    run_cli("repo", "create", "team/app", "--feed", upstream.url, "--mirror")

    preview = run_cli("repo", "sync", "team/app", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "nothing stored" in preview.stdout and "add 3: 1.0, 1.1, latest" in preview.stdout
    assert "to download" in preview.stdout
    as_json = json_output(run_cli("repo", "sync", "team/app", "--dry-run", "-o", "json"))
    assert sorted(as_json["added"]) == ["1.0", "1.1", "latest"] and as_json["bytes_to_fetch"] > 0

    result = run_cli("repo", "sync", "team/app")
    assert result.exit_code == 0, result.output
    assert "added 3: 1.0, 1.1, latest" in result.stdout
    assert "sync task" in result.stderr, "progress while waiting"

    upstream.delete_tag("team/app", "1.0")
    upstream.push_image("team/app", "latest", [b"a newer layer"])
    again = run_cli("repo", "sync", "team/app")
    assert again.exit_code == 0, again.output
    assert "updated 1: latest" in again.stdout and "removed 1: 1.0" in again.stdout


def test_summaries_accept_plain_tag_lists_and_empty_results():
    text = cli_feeds.sync_summary("team/app", {"added": [], "skipped": ["x"], "bytes": 0})
    assert "added 0" in text and "skipped 1: x" in text and "0 B" in text
    assert cli_feeds.sync_preview("team/app", None).startswith("Dry run of team/app")
