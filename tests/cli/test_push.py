"""``registry-admin push`` of every archive kind a user has, against the real admin API."""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from tests.images import (build_oci_index_layout, build_oci_layout, docker_archive_config,
                          docker_archive_diff_ids, docker_archive_from_layout, docker_oci_archive_from_layout,
                          docker_oci_archive_manifest, index_child_digests, layout_manifest, oci_layout_tar)

LAYERS = [{"etc/os-release": b"NAME=cli-test\n"}, {"srv/app.txt": b"app " * 5000}]
PULL_HOST = "127.0.0.1:5000"  # Settings.pull_host default, answered by /pulp/api/v2/status/
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push(run_cli, reference: str, archive: Path, *extra: str):
    result = run_cli("push", reference, "--archive", str(archive), *extra)
    assert result.exit_code == 0, result.output
    return result


def test_oci_layout_directory_is_pushed_with_its_manifest_digest_and_pull_reference(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    manifest_digest, manifest = layout_manifest(layout, "v1")

    result = push(run_cli, "team/app:v1", layout)

    assert result.stdout.strip() == f"{PULL_HOST}/team/app:v1"
    assert server.tag_digest("team/app", "v1") == manifest_digest
    repo = server.repository("team/app")
    assert repo["blob_count"] == 1 + len(manifest["layers"])
    assert repo["last_published"] is not None, "push waits for the publish task"


def test_oci_layout_tar_is_pushed_byte_for_byte(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    manifest_digest, _ = layout_manifest(layout, "v1")
    archive = oci_layout_tar(layout, tmp_path / "layout.tar")

    push(run_cli, "team/app:v1", archive)

    served = server.registry_get("/v2/team/app/manifests/v1",
                                 Accept="application/vnd.oci.image.manifest.v1+json")
    assert sha256(served.content) == manifest_digest
    assert server.tag_digest("team/app", "v1") == manifest_digest


def test_docker_25_oci_archive_keeps_its_manifest_digest(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    archive = docker_oci_archive_from_layout(layout, "v1", tmp_path / "docker25.tar", "team/app:v1")
    manifest_digest, _ = docker_oci_archive_manifest(archive)

    push(run_cli, "team/app:v1", archive)

    assert server.tag_digest("team/app", "v1") == manifest_digest


def test_legacy_docker_save_archive_becomes_schema_2_with_matching_diff_ids(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    archive = docker_archive_from_layout(layout, "v1", tmp_path / "legacy.tar", "team/app:v1")

    push(run_cli, "team/app:1.0", archive)

    served = server.registry_get("/v2/team/app/manifests/1.0", Accept=DOCKER_MANIFEST)
    assert served.headers["Content-Type"].startswith(DOCKER_MANIFEST)
    manifest = json.loads(served.content)
    assert server.tag_digest("team/app", "1.0") == sha256(served.content)
    config = server.registry_get(f"/v2/team/app/blobs/{manifest['config']['digest']}").content
    assert config == docker_archive_config(archive)
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    diff_ids = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.docker.image.rootfs.diff.tar.gzip"
        blob = server.registry_get(f"/v2/team/app/blobs/{layer['digest']}").content
        diff_ids.append(sha256(gzip.decompress(blob)))
    assert diff_ids == docker_archive_diff_ids(archive)


def test_legacy_archive_pushed_twice_gives_the_same_manifest_digest(run_cli, server, tmp_path):
    """Layers are compressed deterministically, so the same archive always makes the same manifest."""
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    archive = docker_archive_from_layout(layout, "v1", tmp_path / "legacy.tar", "team/app:v1")
    push(run_cli, "team/app:a", archive)
    push(run_cli, "team/app:b", archive)
    assert server.tag_digest("team/app", "a") == server.tag_digest("team/app", "b")


def test_second_push_uploads_nothing_and_says_so(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    push(run_cli, "team/app:v1", layout)
    blobs_before = server.repository("team/app")["blob_count"]
    server.log.clear()

    again = push(run_cli, "team/app:v1", layout, "-v")

    assert server.log.uploads() == [], "no blob may be uploaded again"
    assert "already present" in again.stderr
    assert "nothing to upload" in again.stderr
    assert server.repository("team/app")["blob_count"] == blobs_before


def test_same_image_pushed_into_a_second_repository_keeps_its_digest(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    push(run_cli, "team/app:v1", layout)
    server.log.clear()
    result = push(run_cli, "team/other:v1", layout)
    assert result.stdout.strip() == f"{PULL_HOST}/team/other:v1"
    assert server.tag_digest("team/other", "v1") == server.tag_digest("team/app", "v1")
    # The registry already holds every blob: each is mounted, none is sent again.
    assert server.log.uploads(), "each blob is offered for a mount"
    assert {method for method, _ in server.log.uploads()} == {"POST"}
    assert "mounted" in result.stderr


def test_tag_defaults_to_latest(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    result = push(run_cli, "plain", layout)
    assert result.stdout.strip() == f"{PULL_HOST}/plain:latest"
    assert server.tag_digest("plain", "latest") == layout_manifest(layout, "v1")[0]


def test_image_is_chosen_by_tag_when_the_layout_holds_several(run_cli, server, tmp_path):
    first = build_oci_layout(tmp_path, "one")
    second = build_oci_layout(tmp_path, "two")
    # Merge the second image into the first layout, as `skopeo copy ... oci:layout:two` would.
    for blob in (second / "blobs" / "sha256").iterdir():
        (first / "blobs" / "sha256" / blob.name).write_bytes(blob.read_bytes())
    index = json.loads((first / "index.json").read_text())
    index["manifests"] += json.loads((second / "index.json").read_text())["manifests"]
    (first / "index.json").write_text(json.dumps(index))

    push(run_cli, "team/app:two", first)
    assert server.tag_digest("team/app", "two") == layout_manifest(second, "two")[0]

    missing = run_cli("push", "team/app:three", "--archive", str(first))
    assert missing.exit_code != 0
    assert "no image is tagged 'three'" in missing.stderr


def test_multi_arch_index_is_pushed_with_its_children(run_cli, server, tmp_path):
    layout = build_oci_index_layout(tmp_path, "multi")
    index_digest, index = layout_manifest(layout, "multi")

    push(run_cli, "team/multi:multi", layout)

    assert server.tag_digest("team/multi", "multi") == index_digest
    repo = server.repository("team/multi")
    images = server.api(f"/pulp/api/v2/repositories/{repo['id']}/images/")
    assert {image["digest"] for image in images} == {index_digest, *index_child_digests(index)}


def test_no_wait_skips_waiting_but_still_prints_the_reference(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    result = push(run_cli, "team/app:v1", layout, "--no-wait")
    assert result.stdout.strip() == f"{PULL_HOST}/team/app:v1"
    assert "--no-wait" in result.stderr


@pytest.mark.parametrize("reference, complaint", [
    ("Team/App:v1", "invalid repository name"),
    ("team/app:-v1", "invalid tag"),
    ("team/app@sha256:" + "0" * 64, "not by digest"),
])
def test_invalid_reference_is_refused_before_reading_anything(run_cli, server, tmp_path, reference, complaint):
    from tests.cli.conftest import one_error_line

    result = run_cli("push", reference, "--archive", str(tmp_path / "nothing-here.tar"))
    assert complaint in one_error_line(result)
    assert server.repository_names() == []


def test_without_archive_docker_save_of_name_and_tag_is_pushed(run_cli, server, tmp_path):
    """No Docker engine runs here, so a stand-in ``docker`` plays the engine: it answers ``docker version``
    and writes a prepared archive for ``docker save``; the test checks what registry-admin asked of it."""
    layout = build_oci_layout(tmp_path, "v1", layers=LAYERS)
    archive = docker_oci_archive_from_layout(layout, "v1", tmp_path / "saved.tar", "team/app:v1")
    calls = tmp_path / "docker-calls.txt"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$1" in
  version) echo 25.0.3 ;;
  save) [ "$2" = --output ] && cp {archive} "$3" ;;
  *) exit 1 ;;
esac
""")
    docker.chmod(0o755)

    result = run_cli("push", "team/app:v1", env={"PATH": f"{bin_dir}:/usr/bin:/bin"})

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{PULL_HOST}/team/app:v1"
    saved = calls.read_text().splitlines()[-1].split()
    assert saved[0] == "save" and saved[-1] == "team/app:v1"
    assert not Path(saved[2]).exists(), "the temporary docker save output is removed"
    assert server.tag_digest("team/app", "v1") == docker_oci_archive_manifest(archive)[0]
