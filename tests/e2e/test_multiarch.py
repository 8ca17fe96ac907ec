"""A multi-arch OCI index goes in with ``skopeo copy --all`` and comes out of Crane unchanged."""
from __future__ import annotations

import pytest

from tests.e2e.clients import crane_manifest, skopeo_inspect_raw, skopeo_push, wait_until_pullable
from tests.images import (build_oci_index_layout, index_child_digests, layout_blob, layout_manifest,
                          layout_manifest_bytes, skopeo)

pytestmark = pytest.mark.e2e


def test_multi_arch_index_round_trips_through_crane(dev_server, repo_name, tmp_path):
    source = build_oci_index_layout(tmp_path, "multi", architectures=("amd64", "arm64"))
    index_digest, index = layout_manifest(source, "multi")
    children = index_child_digests(index)

    skopeo_push(dev_server, f"oci:{source}:multi", repo_name, "multi", "--all")
    served = wait_until_pullable(dev_server, repo_name, "multi")
    assert served.headers["Docker-Content-Digest"] == index_digest
    assert served.headers["Content-Type"].startswith("application/vnd.oci.image.index.v1+json")

    pulled = tmp_path / "pulled"
    skopeo("copy", "--all", "--src-tls-verify=false",
           f"docker://{dev_server.registry_host}/{repo_name}:multi", f"oci:{pulled}:multi")

    assert layout_manifest_bytes(pulled, "multi") == layout_manifest_bytes(source, "multi")
    for child_digest in children:
        assert layout_blob(pulled, child_digest) == layout_blob(source, child_digest)
        child = crane_manifest(dev_server, repo_name, child_digest)
        assert child.status_code == 200 and child.content == layout_blob(source, child_digest)
        assert child.headers["Docker-Content-Digest"] == child_digest
        for layer in [child.json()["config"], *child.json()["layers"]]:
            assert layout_blob(pulled, layer["digest"]) == layout_blob(source, layer["digest"])
    assert skopeo_inspect_raw(dev_server.registry_host, repo_name, "multi") == layout_manifest_bytes(source, "multi")


def test_skopeo_picks_the_image_of_the_requested_architecture(dev_server, repo_name, tmp_path):
    source = build_oci_index_layout(tmp_path, "multi", architectures=("amd64", "arm64"))
    _, index = layout_manifest(source, "multi")
    arm64 = next(child["digest"] for child in index["manifests"] if child["platform"]["architecture"] == "arm64")
    skopeo_push(dev_server, f"oci:{source}:multi", repo_name, "multi", "--all")
    wait_until_pullable(dev_server, repo_name, "multi")

    pulled = tmp_path / "arm64"
    skopeo("copy", "--override-arch", "arm64", "--src-tls-verify=false",
           f"docker://{dev_server.registry_host}/{repo_name}:multi", f"dir:{pulled}")

    assert (pulled / "manifest.json").read_bytes() == layout_blob(source, arm64)
