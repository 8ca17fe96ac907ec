"""The push client against another real registry (Debian's docker-registry, the CNCF distribution).

That registry answers upload ``Location``s as absolute URLs that already carry
a query string, which the admin API does not: this checks the client follows
the protocol rather than one server.
"""
from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from admin_client.archives import open_image
from admin_client.connection import AdminClient, ClientConfig
from admin_client.push import Pusher, with_query
from admin_client.reference import parse_reference
from tests.images import build_oci_layout, docker_archive_from_layout, layout_manifest
from tests.servers import free_port, stop_process, wait_for_http

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture
def distribution_registry(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'registry-data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = (tmp_path / "registry.log").open("wb")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def alive() -> None:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "registry.log").read_text())
        wait_for_http(url + "/v2/", deadline_s=30, alive=alive)
        yield url
    finally:
        stop_process(process)
        log.close()


def pusher_for(url: str, reference: str) -> Pusher:
    return Pusher(AdminClient(ClientConfig(url=url, username="anyone", password="unused")), parse_reference(reference))


def served_digest(url: str, name: str, tag: str, media_type: str) -> str:
    response = requests.get(f"{url}/v2/{name}/manifests/{tag}", headers={"Accept": media_type}, timeout=30)
    response.raise_for_status()
    return "sha256:" + hashlib.sha256(response.content).hexdigest()


def test_oci_layout_push_to_distribution_keeps_the_digest_and_skips_present_blobs(distribution_registry, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"a.txt": b"a" * 4000}, {"b.txt": b"b" * 4000}])
    manifest_digest, _ = layout_manifest(layout, "v1")

    with open_image(layout, "team/app", "v1") as image:
        first = pusher_for(distribution_registry, "team/app:v1").push(image, wait=True)
        again = pusher_for(distribution_registry, "team/app:v2").push(image, wait=True)

    assert first.manifest_digest == manifest_digest and first.uploaded == 3 and first.task is None
    assert again.uploaded == 0 and again.present == 3
    for tag in ("v1", "v2"):
        assert served_digest(distribution_registry, "team/app", tag, OCI_MANIFEST) == manifest_digest


def test_legacy_archive_push_to_distribution(distribution_registry, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    archive = docker_archive_from_layout(layout, "v1", tmp_path / "legacy.tar", "team/app:v1")
    with open_image(archive, "team/app", "v1") as image:
        result = pusher_for(distribution_registry, "team/app:v1").push(image)
    assert served_digest(distribution_registry, "team/app", "v1", DOCKER_MANIFEST) == result.manifest_digest


@pytest.mark.parametrize("location, expected", [
    ("/v2/a/blobs/uploads/1", "/v2/a/blobs/uploads/1?digest=sha256:x"),
    ("http://h:5000/v2/a/blobs/uploads/1?_state=abc", "http://h:5000/v2/a/blobs/uploads/1?_state=abc&digest=sha256:x"),
])
def test_digest_is_added_to_upload_locations_with_or_without_a_query(location, expected):
    assert with_query(location, digest="sha256:x") == expected
