"""Bad input changes nothing and says why (issue 2, point 14, push side)."""
from __future__ import annotations

import io

import pytest

from pulp_registry import oci
from tests.registry.conftest import descriptor, manifest_bytes, sha256, upload_files


def _error(response) -> dict:
    body = response.get_json()
    assert body is not None, response.data
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    return body["errors"][0]


def _image_manifest(config: bytes, layer: bytes, media_type: str = oci.OCI_MANIFEST) -> bytes:
    return manifest_bytes({"schemaVersion": 2, "mediaType": media_type,
                           "config": descriptor(oci.OCI_CONFIG, config),
                           "layers": [descriptor(oci.OCI_LAYER_GZIP, layer)]})


def test_wrong_digest_on_blob_put_is_digest_invalid_and_keeps_nothing(client, auth, services, snapshot):
    before = snapshot()
    start = client.post("/v2/my/app/blobs/uploads/", headers=auth)
    location = start.headers["Location"]
    client.patch(location, data=b"the real bytes", headers=auth)
    wrong = sha256(b"other bytes")
    response = client.put(f"{location}?digest={wrong}", headers=auth)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "DIGEST_INVALID"
    assert sha256(b"the real bytes") in error["message"]
    before.assert_unchanged()
    assert upload_files(services) == []
    assert client.get(location, headers=auth).status_code == 404
    assert client.head(f"/v2/my/app/blobs/{wrong}", headers=auth).status_code == 404


def test_wrong_digest_on_single_post_keeps_nothing(client, auth, services, snapshot):
    before = snapshot()
    response = client.post(f"/v2/my/app/blobs/uploads/?digest={sha256(b'x')}", data=b"y", headers=auth)
    assert response.status_code == 400
    assert _error(response)["code"] == "DIGEST_INVALID"
    before.assert_unchanged()
    assert list((services.storage.tmp_dir).iterdir()) == []


@pytest.mark.parametrize("raw,detail", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "layers": []}), "config"),
    (manifest_bytes({"schemaVersion": 1, "name": "x"}), "schema 1"),
    (manifest_bytes({"schemaVersion": 2, "mediaType": "application/x-unknown", "config": {}}), "mediaType"),
    (manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                     "config": {"mediaType": oci.OCI_CONFIG, "digest": "sha256:short", "size": 2}}),
     "config.digest"),
])
def test_malformed_manifest_is_manifest_invalid_saying_what_is_wrong(client, auth, push, snapshot, raw, detail):
    push.image("my/app", tag="latest")
    before = snapshot()
    response = push.manifest("my/app", "broken", raw, oci.OCI_MANIFEST)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "MANIFEST_INVALID"
    assert detail in error["message"]
    before.assert_unchanged()


def test_manifest_naming_a_missing_blob_is_refused_and_creates_no_repository(client, auth, push, snapshot):
    push.blob("other/app", b"config")  # held by another repository: still missing here
    before = snapshot()
    raw = _image_manifest(b"config", b"layer never pushed")
    response = push.manifest("new/app", "latest", raw, oci.OCI_MANIFEST)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error["detail"]["digest"] == sha256(b"config")
    before.assert_unchanged()


def test_manifest_naming_a_missing_layer_in_an_existing_repository_changes_nothing(client, auth, push, snapshot):
    push.blob("my/app", b"config")
    before = snapshot()
    response = push.manifest("my/app", "latest", _image_manifest(b"config", b"missing layer"), oci.OCI_MANIFEST)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error["detail"]["digest"] == sha256(b"missing layer")
    assert sha256(b"missing layer") in error["message"]
    before.assert_unchanged()


def test_index_naming_a_missing_child_manifest_is_manifest_blob_unknown(client, auth, push, snapshot):
    present, raw_present = push.image("my/app")
    before = snapshot()
    absent = _image_manifest(b"c", b"l")
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        descriptor(oci.OCI_MANIFEST, raw_present), descriptor(oci.OCI_MANIFEST, absent)]})
    response = push.manifest("my/app", "multi", raw, oci.OCI_INDEX)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
    assert error["detail"]["digest"] == sha256(absent)
    before.assert_unchanged()
    assert present


def test_descriptor_size_that_does_not_match_the_blob_is_manifest_invalid(client, auth, push, snapshot):
    push.blob("my/app", b"config")
    push.blob("my/app", b"layer")
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": descriptor(oci.OCI_CONFIG, b"config"),
                          "layers": [{**descriptor(oci.OCI_LAYER, b"layer"), "size": 999}]})
    before = snapshot()
    response = push.manifest("my/app", "latest", raw, oci.OCI_MANIFEST)
    assert response.status_code == 400
    assert _error(response)["code"] == "MANIFEST_INVALID"
    before.assert_unchanged()


def test_manifest_put_by_a_digest_it_does_not_have_is_digest_invalid(client, auth, push, snapshot):
    push.blob("my/app", b"config")
    push.blob("my/app", b"layer")
    raw = _image_manifest(b"config", b"layer")
    before = snapshot()
    response = push.manifest("my/app", sha256(b"something else"), raw, oci.OCI_MANIFEST)
    assert response.status_code == 400
    assert _error(response)["code"] == "DIGEST_INVALID"
    before.assert_unchanged()


@pytest.mark.parametrize("name", ["My/App", "my/-app", "my/app-", "x" * 256, "my/app/"])
def test_invalid_repository_name_is_name_invalid_and_creates_nothing(client, auth, snapshot, name):
    before = snapshot()
    data = b"blob"
    for response in (
        client.post(f"/v2/{name}/blobs/uploads/", headers=auth),
        client.post(f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", data=data, headers=auth),
        client.put(f"/v2/{name}/manifests/latest", data=_image_manifest(b"c", b"l"),
                   headers={**auth, "Content-Type": oci.OCI_MANIFEST}),
        client.head(f"/v2/{name}/blobs/{sha256(data)}", headers=auth),
    ):
        assert response.status_code == 400, (name, response.status_code, response.data)
        if response.data:
            assert _error(response)["code"] == "NAME_INVALID"
    before.assert_unchanged()


@pytest.mark.parametrize("tag", ["-starts-with-dash", ".hidden", "t" * 129, "bad+tag"])
def test_tag_breaking_the_rules_is_tag_invalid(client, auth, push, snapshot, tag):
    push.blob("my/app", b"config")
    push.blob("my/app", b"layer")
    before = snapshot()
    response = push.manifest("my/app", tag, _image_manifest(b"config", b"layer"), oci.OCI_MANIFEST)
    assert response.status_code == 400
    assert _error(response)["code"] == "TAG_INVALID"
    before.assert_unchanged()


def test_manifest_over_the_limit_is_413_and_nothing_is_stored(client, auth, services, push, snapshot):
    push.blob("my/app", b"config")
    push.blob("my/app", b"layer")
    limit = services.settings.max_manifest_size
    assert limit == 4 * 1024 * 1024
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": descriptor(oci.OCI_CONFIG, b"config"),
           "layers": [descriptor(oci.OCI_LAYER_GZIP, b"layer")], "annotations": {"padding": "x" * limit}}
    raw = manifest_bytes(doc)
    before = snapshot()
    response = push.manifest("my/app", "huge", raw, oci.OCI_MANIFEST)
    assert response.status_code == 413
    assert _error(response)["code"] == "MANIFEST_INVALID"
    # Streamed without Content-Length, the body is cut off at the limit too.
    streamed = client.put("/v2/my/app/manifests/huge",
                          headers={**auth, "Content-Type": oci.OCI_MANIFEST, "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True})
    assert streamed.status_code == 413
    before.assert_unchanged()


def test_manifest_at_the_limit_is_accepted(client, auth, services, push):
    push.blob("my/app", b"config")
    push.blob("my/app", b"layer")
    limit = services.settings.max_manifest_size
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": descriptor(oci.OCI_CONFIG, b"config"),
           "layers": [descriptor(oci.OCI_LAYER_GZIP, b"layer")], "annotations": {"padding": ""}}
    overhead = len(manifest_bytes(doc))
    doc["annotations"]["padding"] = "x" * (limit - overhead)
    raw = manifest_bytes(doc)
    assert len(raw) == limit
    assert push.manifest("my/app", "big", raw, oci.OCI_MANIFEST).status_code == 201
