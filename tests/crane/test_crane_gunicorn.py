"""``crane`` under gunicorn as users run it, pulled from with skopeo: digests equal what was published."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest
import requests

from pulp_registry import content, oci
from tests.crane.content import Publisher
from tests.crane.live import running_crane, store_layout
from tests.images import (build_oci_index_layout, build_oci_layout, layout_blob, layout_descriptor,
                          manifest_digests, skopeo)
from tests.servers import poll

pytestmark = pytest.mark.e2e


@pytest.fixture
def crane_host(services, tmp_path: Path) -> Iterator[str]:
    with running_crane(services.settings.published_dir, tmp_path / "crane.log") as host:
        yield host


def test_skopeo_inspects_and_copies_an_image_from_crane_under_gunicorn(services, crane_host, tmp_path):
    layout = build_oci_layout(tmp_path / "build", "1.0", layers=[
        {"etc/motd": b"hello from crane\n", "big.bin": os.urandom(300_000)}, {"etc/second": b"two\n"}])
    publisher = Publisher(services)
    repo = publisher.repository("crane/e2e")
    manifest_digest = store_layout(services, repo, layout, "1.0")
    publisher.publish(repo)
    source = f"docker://{crane_host}/crane/e2e:1.0"

    inspected = poll(lambda: json.loads(skopeo("inspect", "--tls-verify=false", source).stdout),
                     20, "skopeo inspect of the published image")
    assert inspected["Digest"] == manifest_digest

    pulled = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", source, f"dir:{pulled}")
    assert manifest_digests(pulled) == manifest_digests(layout, "1.0")

    tags = json.loads(skopeo("list-tags", "--tls-verify=false", "docker://" + crane_host + "/crane/e2e").stdout)
    assert tags["Tags"] == ["1.0"]


def test_skopeo_copies_all_platforms_of_an_index_and_sees_a_republish(services, crane_host, tmp_path):
    layout = build_oci_index_layout(tmp_path / "build", "multi")
    publisher = Publisher(services)
    repo = publisher.repository("crane/multi")
    index_digest = store_layout(services, repo, layout, "multi")
    publisher.publish(repo)
    source = f"docker://{crane_host}/crane/multi:multi"
    poll(lambda: skopeo("inspect", "--raw", "--tls-verify=false", source), 20, "index published")

    pulled = tmp_path / "pulled-oci"
    skopeo("copy", "--all", "--src-tls-verify=false", source, f"oci:{pulled}:multi")
    pulled_index = layout_descriptor(pulled, "multi")
    assert pulled_index["digest"] == index_digest
    original_children = [c["digest"] for c in json.loads(layout_blob(layout, index_digest))["manifests"]]
    copied_children = [c["digest"] for c in json.loads(layout_blob(pulled, index_digest))["manifests"]]
    assert copied_children == original_children
    for child in original_children:
        assert layout_blob(pulled, child) == layout_blob(layout, child)

    # A new tag published while Crane runs shows up in every worker without a restart.
    content.set_tag(services.db, repo["_id"], "again", index_digest)
    publisher.publish(repo)
    url = f"http://{crane_host}/v2/crane/multi/tags/list"
    poll(lambda: all(requests.get(url, timeout=5).json()["tags"] == ["again", "multi"] for _ in range(6)),
         20, "republished tags served by every worker")
    response = requests.head(f"http://{crane_host}/v2/crane/multi/manifests/again",
                             headers={"Accept": oci.OCI_INDEX}, timeout=5)
    assert response.headers["Docker-Content-Digest"] == index_digest


def listening_sockets(port: int) -> int:
    """LISTEN entries for ``port`` in the kernel's TCP table."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


def test_each_worker_listens_on_its_own_socket_so_the_kernel_spreads_connections(crane_host):
    port = int(crane_host.rsplit(":", 1)[1])
    assert poll(lambda: listening_sockets(port) == 2 or None, 20, "two listening sockets, one per worker")
