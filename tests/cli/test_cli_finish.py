"""The rough edges users hit: list vs a repository called repos, push messages that tell one story,
pushing one image of a multi-image layout, truncated archives, the pull port, full references."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.serving import make_server

from admin_client.listing import short_time
from crane.app import create_app as create_crane_app
from crane.config import CraneSettings
from tests.cli.conftest import json_output, one_error_line
from tests.images import build_oci_layout, layout_manifest, oci_layout_tar

PULL_HOST = "127.0.0.1:5000"


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# --- list ---------------------------------------------------------------------------------


def test_list_without_a_name_lists_repositories_like_repo_list(run_cli, server):
    run_cli("repo", "create", "team/app")
    listed = run_cli("list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == run_cli("repo", "list").stdout
    assert rows(listed.stdout)[1][0] == "team/app"


def test_list_repos_lists_a_repository_called_repos_when_there_is_one(run_cli, server, tmp_path):
    old_spelling = run_cli("list", "repos")
    assert old_spelling.exit_code == 0 and "No repositories yet" in old_spelling.stdout
    assert "old spelling" in old_spelling.stderr

    layout = build_oci_layout(tmp_path, "v1")
    assert run_cli("push", "repos:v1", "--archive", str(layout)).exit_code == 0
    tags = run_cli("list", "repos")
    assert tags.exit_code == 0, tags.output
    assert rows(tags.stdout)[0] == ["TAG", "DIGEST", "TYPE", "SIZE", "PUSHED"]
    assert rows(tags.stdout)[1][0] == "v1"
    assert "old spelling" not in tags.stderr


def test_pushed_means_the_same_in_the_table_and_in_json(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    assert run_cli("push", "team/app:a", "--archive", str(layout)).exit_code == 0
    assert run_cli("push", "team/app:b", "--archive", str(layout)).exit_code == 0
    listed = json_output(run_cli("list", "team/app", "-o", "json"))["tags"]
    table = {row[0]: f"{row[5]} {row[6]}" for row in rows(run_cli("list", "team/app").stdout)[1:]}
    for tag in listed:
        assert table[tag["tag"]] == short_time(tag["pushed"])
        assert tag["image_pushed"] <= tag["pushed"], "an image arrives before (or when) a tag points at it"
    assert "when the tag was last pushed" in run_cli("list", "--help").stdout.replace("\n  ", " ")


# --- push messages ------------------------------------------------------------------------


def test_push_messages_say_what_was_sent_mounted_and_present(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"a.txt": b"a" * 3000}])
    first = run_cli("push", "team/app:v1", "--archive", str(layout))
    assert first.exit_code == 0, first.output
    assert "Blobs: 2 sent" in first.stderr and "0 already present" in first.stderr
    assert "mounted" not in first.stderr

    other = run_cli("push", "team/other:v1", "--archive", str(layout), "-vv")
    assert other.exit_code == 0, other.output
    assert "Blobs: 0 sent (0 B), 2 mounted from another repository of this registry (not sent), " \
           "0 already present." in other.stderr
    assert "Uploading 2 of 2" not in other.stderr
    _, manifest = layout_manifest(layout, "v1")
    config = manifest["config"]["digest"].split(":")[1][:12]
    layer = manifest["layers"][0]["digest"].split(":")[1][:12]
    assert f"Mounted config {config}" in other.stderr and f"Mounted layer {layer}" in other.stderr

    again = run_cli("push", "team/app:v1", "--archive", str(layout), "-v")
    assert f"Config {config} already present" in again.stderr and f"Layer {layer} already present" in again.stderr


# --- one image of a multi-image layout ----------------------------------------------------


@pytest.fixture
def two_image_layout(tmp_path) -> tuple[Path, dict[str, str]]:
    """An OCI layout holding images ``one`` and ``two``, as skopeo copy into oci:layout:REF makes it."""
    first = build_oci_layout(tmp_path, "one", layers=[{"one.txt": b"one"}])
    second = build_oci_layout(tmp_path, "two", layers=[{"two.txt": b"two"}])
    for blob in (second / "blobs" / "sha256").iterdir():
        (first / "blobs" / "sha256" / blob.name).write_bytes(blob.read_bytes())
    index = json.loads((first / "index.json").read_text())
    index["manifests"] += json.loads((second / "index.json").read_text())["manifests"]
    (first / "index.json").write_text(json.dumps(index))
    return first, {"one": layout_manifest(first, "one")[0], "two": layout_manifest(second, "two")[0]}


def test_one_image_of_a_layout_is_pushed_under_another_tag(run_cli, server, two_image_layout):
    layout, digests = two_image_layout
    by_option = run_cli("push", "team/app:prod", "--archive", str(layout), "--source-ref", "two")
    assert by_option.exit_code == 0, by_option.output
    assert by_option.stdout.strip() == f"{PULL_HOST}/team/app:prod"
    assert server.tag_digest("team/app", "prod") == digests["two"]

    by_path = run_cli("push", "team/app:stable", "--archive", f"{layout}:one")
    assert by_path.exit_code == 0, by_path.output
    assert server.tag_digest("team/app", "stable") == digests["one"]


def test_a_layout_with_several_images_and_no_ref_lists_them(run_cli, server, two_image_layout):
    layout, _ = two_image_layout
    line = one_error_line(run_cli("push", "team/app:prod", "--archive", str(layout)))
    assert "one, two" in line and "--source-ref" in line
    assert "no image is named 'three'" in one_error_line(
        run_cli("push", "team/app:prod", "--archive", str(layout), "--source-ref", "three"))
    assert server.repository_names() == []


# --- damaged archives ---------------------------------------------------------------------


def test_a_truncated_tar_is_called_truncated_not_something_else(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"big.bin": bytes(range(256)) * 2000}])
    archive = oci_layout_tar(layout, tmp_path / "layout.tar")
    half = tmp_path / "half.tar"
    half.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    line = one_error_line(run_cli("push", "team/app:v1", "--archive", str(half)))
    assert "truncated or corrupt" in line and "not an image archive" not in line
    assert server.log.requests == []


# --- the pull port, and full references ---------------------------------------------------


@pytest.fixture
def crane_url(server) -> Iterator[str]:
    app = create_crane_app(CraneSettings(data_dir=server.services.settings.published_dir))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, name="crane-for-cli-tests", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        thread.join(timeout=30)
        http.server_close()


def test_pointing_url_at_the_pull_port_says_so(run_cli, server, crane_url, tmp_path):
    for args in (["list"], ["repo", "show", "team/app"], ["tasks", "list"]):
        line = one_error_line(run_cli("--url", crane_url, *args))
        assert "is the pull port" in line and "--url" in line and "NAME_UNKNOWN" not in line
    layout = build_oci_layout(tmp_path, "v1")
    line = one_error_line(run_cli("--url", crane_url, "push", "team/app:v1", "--archive", str(layout)))
    assert "is the pull port" in line


def test_the_reference_push_prints_can_be_pushed_again(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    first = run_cli("push", "team/app:v1", "--archive", str(layout))
    reference = first.stdout.strip()
    assert reference == f"{PULL_HOST}/team/app:v1"
    again = run_cli("push", reference.replace(":v1", ":v2"), "--archive", str(layout))
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"{PULL_HOST}/team/app:v2"
    via_url_host = run_cli("push", f"{server.url.split('//')[1]}/team/app:v3", "--archive", str(layout))
    assert via_url_host.exit_code == 0, via_url_host.output
    assert set(server.repository_names()) == {"team/app"}


def test_another_registry_host_in_the_name_is_one_line(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    line = one_error_line(run_cli("push", "registry.example.com:5000/team/app:v1", "--archive", str(layout)))
    assert "must not contain a registry host" in line and "push to --url instead" in line
    assert server.repository_names() == []
