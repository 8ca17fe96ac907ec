"""What skopeo sees when it looks at Crane without pulling: inspect and list-tags."""
from __future__ import annotations

import json

import pytest

from tests.e2e.clients import skopeo_push, wait_until_pullable
from tests.images import build_oci_layout, layout_blob, layout_manifest, skopeo

pytestmark = pytest.mark.e2e


def test_skopeo_inspect_on_crane_shows_the_pushed_image(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1", layers=[{"a.txt": b"a"}, {"b.txt": b"b"}])
    pushed_digest, pushed_manifest = layout_manifest(layout, "v1")
    skopeo_push(dev_server, f"oci:{layout}:v1", repo_name, "v1")
    wait_until_pullable(dev_server, repo_name, "v1")

    inspected = json.loads(skopeo("inspect", "--tls-verify=false",
                                  f"docker://{dev_server.registry_host}/{repo_name}:v1").stdout)

    assert inspected["Digest"] == pushed_digest
    assert inspected["Layers"] == [layer["digest"] for layer in pushed_manifest["layers"]]
    assert inspected["RepoTags"] == ["v1"]
    image_config = json.loads(layout_blob(layout, pushed_manifest["config"]["digest"]))
    assert inspected["Architecture"] == image_config["architecture"] and inspected["Os"] == "linux"

    config = json.loads(skopeo("inspect", "--config", "--tls-verify=false",
                               f"docker://{dev_server.registry_host}/{repo_name}:v1").stdout)
    assert config["rootfs"]["diff_ids"] and len(config["rootfs"]["diff_ids"]) == 2


def test_skopeo_list_tags_on_crane_lists_every_pushed_tag(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    for tag in ("1.0", "1.1", "latest"):
        skopeo_push(dev_server, f"oci:{layout}:v1", repo_name, tag)
    wait_until_pullable(dev_server, repo_name, "latest")

    listed = json.loads(skopeo("list-tags", "--tls-verify=false",
                               f"docker://{dev_server.registry_host}/{repo_name}").stdout)

    assert listed["Repository"].endswith(repo_name)
    assert sorted(listed["Tags"]) == ["1.0", "1.1", "latest"]
