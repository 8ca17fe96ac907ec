"""Pushes that must fail: one line on stderr, a non-zero exit, and nothing sent or created."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.cli.conftest import one_error_line
from tests.images import build_oci_layout, docker_archive_from_layout, layout_manifest, oci_layout_tar


def add_member(tar_path: Path, info: tarfile.TarInfo, data: bytes = b"") -> None:
    with tarfile.open(tar_path, "a") as tar:
        info.size = len(data) if info.isfile() else 0
        tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def rewrite_member(source: Path, dest: Path, name: str, change) -> None:
    """Copy a tar, passing the content of member ``name`` through ``change``."""
    with tarfile.open(source) as old, tarfile.open(dest, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read() if member.isfile() else None
            if member.name == name:
                data = change(data)
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def assert_refused_without_contact(result, server, words: str) -> str:
    line = one_error_line(result)
    assert words in line, line
    assert server.log.requests == [], "nothing may be sent before the archive is verified"
    assert server.repository_names() == []
    return line


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return build_oci_layout(tmp_path, "v1", layers=[{"hello.txt": b"hello " * 100}])


@pytest.mark.parametrize("member_name, words", [
    ("../escape.txt", "'..' component"),
    ("blobs/../../escape.txt", "'..' component"),
    ("/etc/escape.txt", "absolute path"),
])
def test_archive_entry_outside_its_root_is_refused(run_cli, server, layout, tmp_path, member_name, words):
    archive = oci_layout_tar(layout, tmp_path / "layout.tar")
    add_member(archive, tarfile.TarInfo(member_name), b"not yours\n")
    result = run_cli("push", "team/app:v1", "--archive", str(archive))
    assert_refused_without_contact(result, server, words)


@pytest.mark.parametrize("target", ["../../../../etc/passwd", "/etc/passwd"])
def test_archive_link_pointing_outside_is_refused(run_cli, server, layout, tmp_path, target):
    archive = oci_layout_tar(layout, tmp_path / "layout.tar")
    link = tarfile.TarInfo("blobs/sha256/innocent")
    link.type = tarfile.SYMTYPE
    link.linkname = target
    add_member(archive, link)
    result = run_cli("push", "team/app:v1", "--archive", str(archive))
    assert_refused_without_contact(result, server, "link")


def test_layout_directory_with_a_symlink_outside_is_refused(run_cli, server, layout, tmp_path):
    _, manifest = layout_manifest(layout, "v1")
    blob = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":", 1)[1]
    blob.unlink()
    outside = tmp_path / "outside-the-layout"
    outside.write_bytes(b"secret")
    os.symlink(outside, blob)
    result = run_cli("push", "team/app:v1", "--archive", str(layout))
    assert_refused_without_contact(result, server, "points outside the layout")


def test_oci_layer_not_matching_its_digest_is_refused_before_any_upload(run_cli, server, layout, tmp_path):
    _, manifest = layout_manifest(layout, "v1")
    layer_digest = manifest["layers"][0]["digest"]
    blob = layout / "blobs" / "sha256" / layer_digest.split(":", 1)[1]
    blob.write_bytes(flip_last_byte(blob.read_bytes()))  # same size, other content
    result = run_cli("push", "team/app:v1", "--archive", str(layout))
    line = assert_refused_without_contact(result, server, "does not match its digest")
    assert layer_digest in line


def test_oci_layout_tar_with_a_tampered_layer_is_refused(run_cli, server, layout, tmp_path):
    _, manifest = layout_manifest(layout, "v1")
    layer_path = "blobs/sha256/" + manifest["layers"][0]["digest"].split(":", 1)[1]
    archive = oci_layout_tar(layout, tmp_path / "layout.tar")
    tampered = tmp_path / "tampered.tar"
    rewrite_member(archive, tampered, layer_path, flip_last_byte)
    result = run_cli("push", "team/app:v1", "--archive", str(tampered))
    assert_refused_without_contact(result, server, "does not match its digest")


def test_legacy_layer_not_matching_its_diff_id_is_refused(run_cli, server, layout, tmp_path):
    archive = docker_archive_from_layout(layout, "v1", tmp_path / "legacy.tar", "team/app:v1")
    with tarfile.open(archive) as tar:
        layer_name = json.load(tar.extractfile("manifest.json"))[0]["Layers"][0]
    tampered = tmp_path / "tampered.tar"

    def append_file(layer: bytes) -> bytes:
        extra = io.BytesIO()
        with tarfile.open(fileobj=io.BytesIO(layer)) as original, tarfile.open(fileobj=extra, mode="w") as out:
            for member in original.getmembers():
                out.addfile(member, original.extractfile(member) if member.isfile() else None)
            info = tarfile.TarInfo("smuggled.txt")
            info.size = 4
            out.addfile(info, io.BytesIO(b"evil"))
        return extra.getvalue()

    rewrite_member(archive, tampered, layer_name, append_file)
    result = run_cli("push", "team/app:v1", "--archive", str(tampered))
    assert_refused_without_contact(result, server, "does not match its digest in the config")


def test_missing_blob_is_refused(run_cli, server, layout):
    _, manifest = layout_manifest(layout, "v1")
    (layout / "blobs" / "sha256" / manifest["config"]["digest"].split(":", 1)[1]).unlink()
    result = run_cli("push", "team/app:v1", "--archive", str(layout))
    assert_refused_without_contact(result, server, "is missing")


@pytest.mark.parametrize("content", [b"this is not an image\n", b"", b"\x1f\x8b\x08\x00garbage"])
def test_file_that_is_not_an_archive_is_refused(run_cli, server, tmp_path, content):
    path = tmp_path / "not-an-archive.tar"
    path.write_bytes(content)
    result = run_cli("push", "team/app:v1", "--archive", str(path))
    assert_refused_without_contact(result, server, "is not an image archive")


def test_directory_that_is_no_layout_is_refused(run_cli, server, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("push", "team/app:v1", "--archive", str(tmp_path / "empty"))
    assert_refused_without_contact(result, server, "is not an image archive")


def test_archive_path_that_does_not_exist_is_refused(run_cli, server, tmp_path):
    result = run_cli("push", "team/app:v1", "--archive", str(tmp_path / "missing.tar"))
    assert_refused_without_contact(result, server, "no such file or directory")


def test_without_archive_and_without_docker_it_says_to_pass_archive(run_cli, server, tmp_path):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = run_cli("push", "team/app:v1", env={"PATH": str(empty_bin)})
    line = assert_refused_without_contact(result, server, "no Docker engine is available")
    assert "--archive" in line


def test_without_archive_and_with_a_docker_client_but_no_engine_it_says_the_same(run_cli, server, tmp_path):
    """The docker CLI alone is not enough: ``docker version`` must reach a server."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2\n"
                      "exit 1\n")
    docker.chmod(0o755)
    result = run_cli("push", "team/app:v1", env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert_refused_without_contact(result, server, "no Docker engine is available")


def test_wrong_password_is_one_line_saying_the_credentials_were_refused(run_cli, server, layout):
    result = run_cli("push", "team/app:v1", "--archive", str(layout), env={"REGISTRY_ADMIN_PASSWORD": "wrong"})
    line = one_error_line(result)
    assert "refused the credentials" in line and "'admin'" in line
    assert server.log.uploads() == []
    assert server.repository_names() == []


def test_unreachable_server_names_the_url(run_cli, server, layout):
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("--url", url, "push", "team/app:v1", "--archive", str(layout))
    line = one_error_line(result)
    assert f"could not reach {url}" in line and "connection refused" in line


def test_failed_publish_task_fails_the_push_with_the_task_error(run_cli, server, layout):
    published = Path(server.services.settings.published_dir)
    if published.exists():
        import shutil
        shutil.rmtree(published)
    published.write_text("a file where the published tree should be\n")  # publishing cannot succeed
    result = run_cli("push", "team/app:v1", "--archive", str(layout))
    line = one_error_line(result)
    assert "publish task" in line and "ended error" in line


def test_index_missing_one_of_its_images_is_refused_naming_the_platform(run_cli, server, tmp_path):
    from tests.images import build_oci_index_layout

    layout = build_oci_index_layout(tmp_path, "multi", architectures=("amd64", "arm64"))
    _, index = layout_manifest(layout, "multi")
    arm = next(child for child in index["manifests"] if child["platform"]["architecture"] == "arm64")
    (layout / "blobs" / "sha256" / arm["digest"].split(":", 1)[1]).unlink()
    result = run_cli("push", "team/multi:multi", "--archive", str(layout))
    line = assert_refused_without_contact(result, server, "which is not in the archive")
    assert "linux/arm64" in line
