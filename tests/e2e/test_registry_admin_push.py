"""``registry-admin push`` from every archive form a user has, then a skopeo pull from Crane."""
from __future__ import annotations

import json

import pytest

from tests.e2e.clients import crane_manifest, crane_pull_dir, registry_admin, sha256, wait_until_pullable
from tests.images import (build_oci_layout, dir_blob, dir_manifest_bytes, docker_archive_config,
                          docker_archive_diff_ids, docker_archive_from_layout, docker_oci_archive_from_layout,
                          layout_manifest_bytes, manifest_digests, oci_layout_tar)

pytestmark = pytest.mark.e2e

LAYERS = [{"etc/os-release": b"NAME=test\n"}, {"srv/app.txt": b"app " * 3000}]


def push(server, name: str, tag: str, archive) -> str:
    """``registry-admin push NAME:TAG --archive PATH``; returns what it printed on stdout."""
    result = registry_admin(server, "--non-interactive", "push", f"{name}:{tag}", "--archive", archive)
    return result.stdout


@pytest.mark.parametrize("archive_kind", ["docker-save-legacy", "docker-save-oci"])
def test_docker_save_archive_pushed_with_registry_admin_is_pulled_with_skopeo(dev_server, repo_name, tmp_path,
                                                                              archive_kind):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    build = docker_archive_from_layout if archive_kind == "docker-save-legacy" else docker_oci_archive_from_layout
    archive = build(layout, "v1", tmp_path / "image.tar", f"{repo_name}:v1")

    printed = push(dev_server, repo_name, "v1", archive)
    assert f"{dev_server.registry_host}/{repo_name}:v1" in printed

    served = wait_until_pullable(dev_server, repo_name, "v1")
    pulled = crane_pull_dir(dev_server, repo_name, "v1", tmp_path / "pulled")
    pulled_digests = manifest_digests(pulled)
    assert served.headers["Docker-Content-Digest"] == pulled_digests.manifest_digest == sha256(served.content)
    assert pulled_digests.config_digest == sha256(docker_archive_config(archive))
    assert list(pulled_digests.diff_ids) == docker_archive_diff_ids(archive)
    for layer_digest in pulled_digests.layer_digests:
        dir_blob(pulled, layer_digest)  # present and matching its digest


@pytest.mark.parametrize("layout_form", ["directory", "tar"])
def test_oci_layout_pushed_with_registry_admin_is_pulled_byte_for_byte(dev_server, repo_name, tmp_path,
                                                                       layout_form):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    source = layout if layout_form == "directory" else oci_layout_tar(layout, tmp_path / "layout.tar")

    push(dev_server, repo_name, "v1", source)

    wait_until_pullable(dev_server, repo_name, "v1")
    pulled = crane_pull_dir(dev_server, repo_name, "v1", tmp_path / "pulled")
    assert dir_manifest_bytes(pulled) == layout_manifest_bytes(layout, "v1")
    assert manifest_digests(pulled) == manifest_digests(layout, "v1")


def test_registry_admin_list_shows_pushed_tags_with_their_digests(dev_server, repo_name, tmp_path):
    first = build_oci_layout(tmp_path, "v1")
    second = build_oci_layout(tmp_path, "v1")
    push(dev_server, repo_name, "1.0", first)
    push(dev_server, repo_name, "latest", second)
    first_digest = manifest_digests(first, "v1").manifest_digest
    second_digest = manifest_digests(second, "v1").manifest_digest

    table = registry_admin(dev_server, "--non-interactive", "list", repo_name).stdout
    assert "1.0" in table and "latest" in table

    as_json = registry_admin(dev_server, "--non-interactive", "list", repo_name, "--output", "json").stdout
    listed = json.dumps(json.loads(as_json))
    assert first_digest in listed and second_digest in listed

    repos = registry_admin(dev_server, "--non-interactive", "list", "repos").stdout
    assert repo_name in repos
    repos_json = json.dumps(json.loads(
        registry_admin(dev_server, "--non-interactive", "list", "repos", "--output", "json").stdout))
    assert repo_name in repos_json


def test_pushing_the_same_image_twice_sends_no_blob_again_and_changes_nothing(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    push(dev_server, repo_name, "v1", layout)
    again = registry_admin(dev_server, "--non-interactive", "push", f"{repo_name}:v1", "--archive", layout, "-v")
    assert "already present" in again.stderr
    served = crane_manifest(dev_server, repo_name, "v1")
    assert served.content == layout_manifest_bytes(layout, "v1")


def test_archive_saved_under_another_name_is_pushed_under_the_name_given(dev_server, repo_name, tmp_path):
    """As in the README: `docker save busybox:latest`, then `registry-admin push tools/busybox:1.36`."""
    layout = build_oci_layout(tmp_path, "latest")
    archive = docker_archive_from_layout(layout, "latest", tmp_path / "busybox.tar", "busybox:latest")

    printed = push(dev_server, repo_name, "1.36", archive)

    assert f"{repo_name}:1.36" in printed
    wait_until_pullable(dev_server, repo_name, "1.36")
    pulled = crane_pull_dir(dev_server, repo_name, "1.36", tmp_path / "pulled")
    assert list(manifest_digests(pulled).diff_ids) == docker_archive_diff_ids(archive)
