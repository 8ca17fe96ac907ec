"""The pure parts of registry-admin, without a server: reference grammar, copy grammar, progress, tables."""
from __future__ import annotations

import io

import pytest

from admin_client.connection import UsageProblem
from admin_client.lifecycle import copy_request, pull_references, remove_summary
from admin_client.listing import key_values
from admin_client.reference import (ImageRef, InvalidReference, parse_image_ref, registry_host_of,
                                    split_archive_ref, strip_registry_host)
from admin_client.task_commands import progress_text, task_repositories, tasks_table
from admin_client.tasks import ProgressDisplay, ended_message, progress_totals, status_line

DIGEST = "sha256:" + "ab" * 32
OWN = {"127.0.0.1:5000", "127.0.0.1:8080"}


@pytest.mark.parametrize("text, expected", [
    ("dev/app", ImageRef("dev/app")),
    ("dev/app:1.2", ImageRef("dev/app", tag="1.2")),
    (f"dev/app@{DIGEST}", ImageRef("dev/app", digest=DIGEST)),
])
def test_image_references_are_name_tag_or_digest(text, expected):
    assert parse_image_ref(text) == expected
    assert str(parse_image_ref(text)) == text


@pytest.mark.parametrize("text, complaint", [
    ("dev/app@sha256:1234", "invalid digest"),
    (f"dev/app:1.2@{DIGEST}", "not both"),
    ("Dev/App:1", "invalid repository name"),
])
def test_bad_image_references_say_why(text, complaint):
    with pytest.raises(InvalidReference, match=complaint):
        parse_image_ref(text)


@pytest.mark.parametrize("text, stripped", [
    ("127.0.0.1:5000/team/app:1.0", "team/app:1.0"),          # what push prints
    ("127.0.0.1:8080/team/app", "team/app"),                  # the --url host
    ("team/app:1.0", "team/app:1.0"),
    ("app:1.0", "app:1.0"),
    ("com.example/app:1.0", "com.example/app:1.0"),            # a dotted name, not ours: stays a name
])
def test_this_registrys_host_is_dropped_from_a_reference(text, stripped):
    assert strip_registry_host(text, OWN) == stripped


@pytest.mark.parametrize("text", ["registry.example.com:5000/team/app:1.0", "localhost/team/app"])
def test_another_registry_host_is_a_one_line_error(text):
    with pytest.raises(InvalidReference) as raised:
        strip_registry_host(text, OWN)
    message = str(raised.value)
    assert "must not contain a registry host" in message and "push to --url instead" in message
    assert "\n" not in message


def test_registry_host_needs_a_path_after_it():
    assert registry_host_of("app:1.0") is None
    assert registry_host_of("host:5000/app") == "host:5000"


def test_archive_path_may_carry_the_image_ref_as_skopeo_writes_it():
    existing = {"./layout", "/tmp/odd:name"}
    exists = existing.__contains__
    assert split_archive_ref("./layout", exists) == ("./layout", None)
    assert split_archive_ref("./layout:1.0", exists) == ("./layout", "1.0")
    assert split_archive_ref("./layout:example.com/app:1.0", exists) == ("./layout", "example.com/app:1.0")
    assert split_archive_ref("/tmp/odd:name", exists) == ("/tmp/odd:name", None), "an existing path keeps colons"
    assert split_archive_ref("./missing:1.0", exists) == ("./missing:1.0", None)


def test_copy_grammar_builds_the_api_body():
    one = copy_request([parse_image_ref("dev/app:1.2")], parse_image_ref("prod/app"), None)
    assert one.body() == {"source": "dev/app", "target": "prod/app", "tags": ["1.2"]}
    renamed = copy_request([parse_image_ref("dev/app:1.2")], parse_image_ref("prod/app:1.2-prod"), None)
    assert renamed.body()["target_tag"] == "1.2-prod"
    several = copy_request([parse_image_ref("dev/app:1.2"), parse_image_ref(f"dev/app@{DIGEST}")],
                           parse_image_ref("prod/app"), None)
    assert several.body() == {"source": "dev/app", "target": "prod/app", "tags": ["1.2"], "digests": [DIGEST]}
    pattern = copy_request([parse_image_ref("dev/app")], parse_image_ref("prod/app"), "v1.*")
    assert pattern.body() == {"source": "dev/app", "target": "prod/app", "tag_pattern": "v1.*"}


@pytest.mark.parametrize("sources, target, pattern, complaint", [
    (["dev/app:1", "qa/app:1"], "prod/app", None, "same repository"),
    (["dev/app"], "prod/app", None, "say what to copy"),
    (["dev/app:1", "dev/app:2"], "prod/app:x", None, "exactly one"),
    (["dev/app"], "prod/app:x", "v1.*", "exactly one"),
    (["dev/app:1"], f"prod/app@{DIGEST}", None, "names a digest"),
    (["dev/app:1"], "dev/app", None, "both dev/app"),
])
def test_copy_grammar_errors_are_usage_errors(sources, target, pattern, complaint):
    with pytest.raises(UsageProblem, match=complaint):
        copy_request([parse_image_ref(s) for s in sources], parse_image_ref(target), pattern)


def test_pull_references_after_a_copy_name_tags_or_else_digests():
    request = copy_request([parse_image_ref("dev/app:1.2")], parse_image_ref("prod/app:stable"), None)
    assert pull_references("h:5000", "prod/app", {"tags": ["stable"]}, request) == ["h:5000/prod/app:stable"]
    by_digest = copy_request([parse_image_ref(f"dev/app@{DIGEST}")], parse_image_ref("prod/app"), None)
    assert pull_references("h:5000", "prod/app", {"tags": []}, by_digest) == [f"h:5000/prod/app@{DIGEST}"]


def test_remove_summary_names_what_went():
    assert remove_summary("team/app", {"tags": ["1.0"], "manifests": [], "referrers": []}) == \
        "Removed from team/app: 1 tag(s) 1.0."


RUNNING = {"task_id": "t1", "task_type": "copy", "state": "running", "resources": ["repository:prod-app"],
           "user": "admin", "created": "2026-12-02T08:00:00Z", "finish_time": None,
           "progress_report": {"copy": {"done": 3, "total": 10, "description": "Copying manifests"},
                               "publish": {"done": 0, "total": 1}}}


def test_progress_is_summed_over_steps_and_shown_on_one_line():
    assert progress_totals(RUNNING) == (3, 11)
    assert status_line(RUNNING, "copy task") == "copy task t1: running (copy 3/10, publish 0/1)"
    assert progress_text(RUNNING) == "copy: 3/10  Copying manifests; publish: 0/1"
    assert progress_totals({"state": "waiting"}) == (0, 0)


def test_status_lines_are_written_only_when_something_changed():
    out = io.StringIO()
    display = ProgressDisplay("copy task", terminal=False, file=out)
    display.show(RUNNING)
    display.show(RUNNING)
    display.show({**RUNNING, "state": "finished", "progress_report": {"copy": {"done": 10, "total": 10}}})
    assert out.getvalue().splitlines() == ["copy task t1: running (copy 3/10, publish 0/1)",
                                           "copy task t1: finished (copy 10/10)"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_a_bar_with_the_current_step():
    out = FakeTerminal()
    display = ProgressDisplay("copy task", terminal=True, file=out)
    display.show(RUNNING)
    display.close()
    assert "copy task" in out.getvalue() and "3/11" in out.getvalue() and "Copying manifests" in out.getvalue()


def test_task_table_names_repositories_and_keeps_the_servers_order():
    older = {**RUNNING, "task_id": "t0", "state": "finished", "resources": ["repository:gone"],
             "finish_time": "2026-12-02T07:00:00Z"}
    table = tasks_table([RUNNING, older], {"prod-app": "prod/app"}).splitlines()
    assert table[0].split() == ["ID", "TYPE", "STATE", "REPOSITORY", "USER", "CREATED", "FINISHED"]
    assert table[1].split()[:5] == ["t1", "copy", "running", "prod/app", "admin"]
    assert table[2].split()[3] == "gone", "a repository that is gone is shown by id"
    assert task_repositories({"resources": ["orphans"]}, {}) == "-"


def test_ended_message_gives_the_reason_when_there_is_one():
    assert ended_message({"task_id": "t", "state": "canceled"}, "copy task") == "copy task t ended canceled"
    assert ended_message({"task_id": "t", "state": "error", "error": {"description": "disk full"}}) == \
        "task t ended error: disk full"


def test_key_values_puts_a_result_on_one_line():
    assert key_values({"tags": ["1.2", "1.3"], "blobs": 4}) == "blobs=4 tags=1.2,1.3"
    assert key_values(None) == "-"
