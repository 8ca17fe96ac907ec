"""Push with skopeo to the admin side, pull with skopeo from Crane: the same image comes back."""
from __future__ import annotations

import gzip
import json

import pytest

from tests.e2e.clients import (crane_manifest, crane_pull_dir, sha256, skopeo_inspect_raw, skopeo_push,
                               wait_until_pullable)
from tests.images import (build_oci_layout, dir_blob, dir_manifest_bytes, docker_archive_config,
                          docker_archive_diff_ids, docker_archive_from_layout, docker_oci_archive_from_layout,
                          layer_digests, layout_manifest, layout_manifest_bytes, manifest_digests)

pytestmark = pytest.mark.e2e

TWO_LAYERS = [{"etc/motd": b"first layer\n", "usr/share/doc/a.txt": b"a" * 5000},
              {"app/run.sh": b"#!/bin/sh\necho hello\n", "app/data.bin": bytes(range(256)) * 40}]


def assert_layers_match_diff_ids(pulled_dir, diff_ids) -> None:
    """Each pulled layer, uncompressed, is byte for byte the layer the image config names."""
    manifest = json.loads(dir_manifest_bytes(pulled_dir))
    uncompressed = []
    for layer in manifest["layers"]:
        data = dir_blob(pulled_dir, layer["digest"])
        uncompressed.append(sha256(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data))
    assert uncompressed == list(diff_ids)


def test_oci_layout_pushed_with_skopeo_is_pulled_from_crane_byte_for_byte(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=TWO_LAYERS)
    pushed_digest, pushed_manifest = layout_manifest(layout, "v1")

    skopeo_push(dev_server, f"oci:{layout}:v1", repo_name, "v1")
    served = wait_until_pullable(dev_server, repo_name, "v1")
    pulled = crane_pull_dir(dev_server, repo_name, "v1", tmp_path / "pulled")

    assert dir_manifest_bytes(pulled) == layout_manifest_bytes(layout, "v1")
    assert served.headers["Docker-Content-Digest"] == pushed_digest
    assert served.headers["Content-Type"].startswith("application/vnd.oci.image.manifest.v1+json")
    assert sha256(skopeo_inspect_raw(dev_server.registry_host, repo_name, "v1")) == pushed_digest
    pulled_digests = manifest_digests(pulled)
    assert pulled_digests == manifest_digests(layout, "v1")
    assert list(pulled_digests.layer_digests) == layer_digests(pushed_manifest)
    assert_layers_match_diff_ids(pulled, pulled_digests.diff_ids)


@pytest.mark.parametrize("archive_kind", ["docker-save-legacy", "docker-save-oci"])
def test_docker_archive_pushed_with_skopeo_is_pulled_from_crane_unchanged(dev_server, repo_name, tmp_path,
                                                                          archive_kind):
    layout = build_oci_layout(tmp_path, "v1", layers=TWO_LAYERS)
    build = docker_archive_from_layout if archive_kind == "docker-save-legacy" else docker_oci_archive_from_layout
    archive = build(layout, "v1", tmp_path / "image.tar", f"{repo_name}:v1")

    skopeo_push(dev_server, f"docker-archive:{archive}", repo_name, "v1")
    held_by_admin = skopeo_inspect_raw(dev_server.admin_host, repo_name, "v1", creds=dev_server.creds)
    served = wait_until_pullable(dev_server, repo_name, "v1")
    pulled = crane_pull_dir(dev_server, repo_name, "v1", tmp_path / "pulled")

    assert dir_manifest_bytes(pulled) == held_by_admin
    assert served.content == held_by_admin
    assert served.headers["Docker-Content-Digest"] == sha256(held_by_admin)
    assert sha256(skopeo_inspect_raw(dev_server.registry_host, repo_name, "v1")) == sha256(held_by_admin)
    pulled_digests = manifest_digests(pulled)
    assert pulled_digests.config_digest == sha256(docker_archive_config(archive))
    assert list(pulled_digests.diff_ids) == docker_archive_diff_ids(archive)
    assert list(pulled_digests.layer_digests) == layer_digests(json.loads(held_by_admin))
    assert_layers_match_diff_ids(pulled, docker_archive_diff_ids(archive))


def test_image_pulled_by_digest_equals_image_pulled_by_tag(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    pushed_digest, _ = layout_manifest(layout, "v1")
    skopeo_push(dev_server, f"oci:{layout}:v1", repo_name, "v1")
    wait_until_pullable(dev_server, repo_name, "v1")

    by_digest = crane_pull_dir(dev_server, repo_name, pushed_digest, tmp_path / "by-digest")

    assert dir_manifest_bytes(by_digest) == layout_manifest_bytes(layout, "v1")
    assert crane_manifest(dev_server, repo_name, pushed_digest).headers["Docker-Content-Digest"] == pushed_digest


def test_copy_between_repositories_on_the_admin_side_reuses_blobs(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=TWO_LAYERS)
    pushed_digest, _ = layout_manifest(layout, "v1")
    skopeo_push(dev_server, f"oci:{layout}:v1", repo_name, "v1")

    copy_name = f"{repo_name}-copy"
    skopeo_push(dev_server, f"docker://{dev_server.admin_host}/{repo_name}:v1", copy_name, "stable",
                "--src-tls-verify=false", "--src-creds", dev_server.creds)
    served = wait_until_pullable(dev_server, copy_name, "stable")
    pulled = crane_pull_dir(dev_server, copy_name, "stable", tmp_path / "pulled")

    assert served.headers["Docker-Content-Digest"] == pushed_digest
    assert manifest_digests(pulled) == manifest_digests(layout, "v1")
