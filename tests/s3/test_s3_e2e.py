"""``storage_driver: s3`` end to end: skopeo pushes to the admin side, the publish copies blobs in the
bucket, and skopeo pulls through Crane with ``blob_storage: s3`` (redirect and stream): the same image
comes back, protected repositories included.

``pulp-registry dev`` with an S3 config runs its Crane with ``blob_serving: redirect``; a second
Crane (``stream``, or a 1-second URL expiry) is started in this process on the same tree.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml

from crane.app import create_app as create_crane_app
from pulp_registry.config import load_admin_settings
from pulp_registry.dev import DevOptions, crane_settings, listen, serving
from tests.e2e.clients import sha256, skopeo_push, wait_until_pullable
from tests.images import build_oci_layout, layout_manifest, layout_manifest_bytes, manifest_digests, skopeo
from tests.s3.conftest import PREFIX, Bucket, fetch
from tests.servers import DevServer, free_port, poll, run_dev_server

pytestmark = pytest.mark.e2e

LAYERS = [{"etc/motd": b"stored in a bucket\n", "usr/share/doc/a.txt": b"a" * 5000},
          {"app/data.bin": bytes(range(256)) * 400}]


@pytest.fixture(scope="session", autouse=True)
def client_tools() -> None:
    missing = [tool for tool in ("skopeo", "umoci") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (scripts/test.sh installs them)", pytrace=False)


@dataclasses.dataclass(frozen=True)
class S3Registry:
    server: DevServer
    bucket: Bucket
    config: Path

    def crane(self, **changes: object) -> "contextlib.AbstractContextManager[str]":
        """Another Crane on the same tree and bucket, with ``changes`` to dev's Crane settings; yields its host."""
        settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(self.config)},
                                       {"data_dir": str(self.server.data_dir)})
        port = free_port()
        options = DevOptions(api_port=self.server.api_port, registry_port=port)
        crane = dataclasses.replace(crane_settings(settings, options), **changes)
        return _serving_crane(port, create_crane_app(crane))


@contextlib.contextmanager
def _serving_crane(port: int, app: object) -> Iterator[str]:
    with serving(listen(port, app, "Crane"), "crane-s3"):
        yield f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def s3_registry(s3_server, tmp_path_factory) -> Iterator[S3Registry]:
    client = s3_server.client()
    name = f"registry-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    bucket = Bucket(s3_server, name, client)
    workdir = tmp_path_factory.mktemp("s3-dev")
    config = workdir / "pulp-registry.yaml"
    config.write_text(yaml.safe_dump({"storage_driver": "s3", **bucket.settings()}))
    with run_dev_server(workdir, extra_args=["--config", str(config)]) as server:
        yield S3Registry(server, bucket, config)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return build_oci_layout(tmp_path_factory.mktemp("s3-image"), "v1", layers=LAYERS)


@pytest.fixture(scope="module")
def public_name(s3_registry, layout) -> str:
    name = f"s3/public-{uuid.uuid4().hex[:8]}"
    skopeo_push(s3_registry.server, f"oci:{layout}:v1", name, "v1")
    wait_until_pullable(s3_registry.server, name, "v1")
    return name


@pytest.fixture(scope="module")
def protected_name(s3_registry, layout) -> str:
    server = s3_registry.server
    name = f"s3/protected-{uuid.uuid4().hex[:8]}"
    skopeo_push(server, f"oci:{layout}:v1", name, "v1")
    repos = server.api("GET", "/pulp/api/v2/repositories/").json()
    repo_id = next(repo["id"] for repo in repos if repo["name"] == name)
    response = server.api("PUT", f"/pulp/api/v2/repositories/{repo_id}/", json={"delta": {"protected": True}})
    assert response.status_code in (200, 202), response.text
    server.wait_for_tasks()
    poll(lambda: fetch(f"{server.registry_url}/v2/{name}/manifests/v1").status_code == 401, 30,
         f"Crane protecting {name}")
    return name


def pull_oci(host: str, name: str, dest: Path, *creds: str) -> Path:
    skopeo("copy", "--src-tls-verify=false", *creds, f"docker://{host}/{name}:v1", f"oci:{dest}:v1")
    return dest


def assert_same_image(pulled: Path, layout: Path) -> None:
    assert layout_manifest_bytes(pulled, "v1") == layout_manifest_bytes(layout, "v1")
    assert manifest_digests(pulled, "v1") == manifest_digests(layout, "v1")


def layer_digests(layout: Path) -> list[str]:
    _digest, manifest = layout_manifest(layout, "v1")
    return [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]


def pull_token(server: DevServer, name: str) -> str:
    response = requests.get(f"{server.api_url}/token", auth=server.auth, timeout=30,
                            params={"service": "pulp-registry", "scope": f"repository:{name}:pull"})
    response.raise_for_status()
    return response.json()["token"]


def test_skopeo_pulls_through_crane_redirects_to_pre_signed_urls_the_image_pushed(s3_registry, public_name,
                                                                                 layout, tmp_path):
    server = s3_registry.server
    pulled = pull_oci(server.registry_host, public_name, tmp_path / "pulled")

    assert_same_image(pulled, layout)
    config_digest = layer_digests(layout)[0]
    answer = fetch(f"{server.registry_url}/v2/{public_name}/blobs/{config_digest}")
    assert answer.status_code == 307
    assert answer.headers["Docker-Content-Digest"] == config_digest
    location = urlsplit(answer.headers["Location"])
    assert location.path.endswith(f"/{PREFIX}published/blobs/{config_digest.replace(':', '/')}")
    assert sha256(requests.get(answer.headers["Location"], timeout=30).content) == config_digest


def test_skopeo_pulls_through_a_streaming_crane_the_image_pushed(s3_registry, public_name, layout, tmp_path):
    with s3_registry.crane(blob_serving="stream") as host:
        pulled = pull_oci(host, public_name, tmp_path / "pulled")
        layer = layer_digests(layout)[1]
        whole = fetch(f"http://{host}/v2/{public_name}/blobs/{layer}")
        part = fetch(f"http://{host}/v2/{public_name}/blobs/{layer}", headers={"Range": "bytes=10-19"})

    assert_same_image(pulled, layout)
    assert whole.status_code == 200 and sha256(whole.content) == layer
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(whole.content)}"


def test_the_admin_side_serves_a_range_of_a_blob_stored_in_the_bucket(s3_registry, public_name, layout):
    server = s3_registry.server
    layer = layer_digests(layout)[1]
    url = f"{server.api_url}/v2/{public_name}/blobs/{layer}"
    whole = fetch(url, auth=server.auth)
    part = fetch(url, auth=server.auth, headers={"Range": "bytes=100-199"})

    assert whole.status_code == 200 and sha256(whole.content) == layer
    assert part.status_code == 206 and part.content == whole.content[100:200]


def test_a_manifest_asked_for_as_a_blob_is_served_from_the_tree(s3_registry, public_name, layout):
    manifest_digest, _ = layout_manifest(layout, "v1")
    answer = fetch(f"{s3_registry.server.registry_url}/v2/{public_name}/blobs/{manifest_digest}")
    assert answer.status_code == 200 and answer.content == layout_manifest_bytes(layout, "v1")


def test_a_protected_repository_redirects_to_a_signed_url_only_after_a_token(s3_registry, protected_name,
                                                                            layout, tmp_path):
    server = s3_registry.server
    layer = layer_digests(layout)[1]
    url = f"{server.registry_url}/v2/{protected_name}/blobs/{layer}"

    anonymous = fetch(url)
    with_token = fetch(url, headers={"Authorization": f"Bearer {pull_token(server, protected_name)}"})
    pulled = pull_oci(server.registry_host, protected_name, tmp_path / "pulled", "--src-creds", server.creds)

    assert anonymous.status_code == 401 and "Location" not in anonymous.headers
    assert with_token.status_code == 307
    query = parse_qs(urlsplit(with_token.headers["Location"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["300"]
    assert with_token.headers["Cache-Control"] == "private, no-store"
    assert sha256(requests.get(with_token.headers["Location"], timeout=30).content) == layer
    assert_same_image(pulled, layout)


def test_a_pre_signed_url_carries_the_configured_expiry(s3_registry, public_name, layout):
    layer = layer_digests(layout)[1]
    with s3_registry.crane(s3_url_expiry=1) as host:
        answer = fetch(f"http://{host}/v2/{public_name}/blobs/{layer}")
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert answer.status_code == 307 and query["X-Amz-Expires"] == ["1"]


@pytest.mark.xfail(strict=True, reason="moto's server mode checks neither the signature nor the expiry of a "
                                       "pre-signed URL (AWS, MinIO and Ceph do); see the README")
def test_the_s3_server_refuses_an_expired_or_tampered_pre_signed_url(s3_registry, public_name, layout):
    layer = layer_digests(layout)[1]
    with s3_registry.crane(s3_url_expiry=1) as host:
        location = fetch(f"http://{host}/v2/{public_name}/blobs/{layer}").headers["Location"]
    tampered = location.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=30).status_code == 403
    time.sleep(2)   # a real clock: the URL was signed for 1 second
    assert requests.get(location, timeout=30).status_code == 403


def test_the_registry_writes_nothing_outside_its_prefix_and_publishes_configs_and_layers(
        s3_registry, public_name, protected_name, layout):
    keys = s3_registry.bucket.keys()
    published = {key for key in keys if key.startswith(PREFIX + "published/blobs/")}

    assert keys and all(key.startswith(PREFIX) for key in keys)
    for digest in layer_digests(layout):
        assert f"{PREFIX}content/{digest.replace(':', '/')}" in keys
        assert f"{PREFIX}published/blobs/{digest.replace(':', '/')}" in published
    manifest_digest, _ = layout_manifest(layout, "v1")
    assert f"{PREFIX}published/blobs/{manifest_digest.replace(':', '/')}" not in published
    tree_blobs = s3_registry.server.data_dir / "published" / "blobs"
    local = {f"{path.parent.name}:{path.name}" for path in tree_blobs.rglob("*") if path.is_file()}
    assert manifest_digest in local and not local & set(layer_digests(layout))
    assert json.loads(layout_manifest_bytes(layout, "v1"))   # the layout itself was not touched
