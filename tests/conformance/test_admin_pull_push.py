"""Pull (``01_pull_test.go``) and push (``02_push_test.go``) on the admin ``/v2/``."""
from __future__ import annotations

import pytest

from pulp_registry import oci
from tests.conformance.suite import (ANNOTATION_KEY, CROSS, EMPTY_JSON, ERROR_CODES, LAYER, NAME,
                                     NONEXISTENT_MANIFEST, Registry, code, desc, digest_of, ok,
                                     pretty)


# --- 01 pull ------------------------------------------------------------------------------


@pytest.fixture
def pulled(reg, data) -> Registry:
    """Pull setup: two configs and the layer by POST+PUT, manifest[0] by tag, manifest[1] by digest."""
    for blob in (data.configs[0], data.configs[1], LAYER):
        reg.push_blob(blob)
    assert ok(reg.put_manifest("tagtest0", data.manifests[0]))
    assert ok(reg.put_manifest(digest_of(data.manifests[1]), data.manifests[1]))
    return reg


def test_pull_blobs_head_and_get_existing_and_nonexistent(pulled, data):
    dummy = digest_of(b"hello world")
    assert pulled.blob("HEAD", dummy).status_code == 404
    head = pulled.blob("HEAD", digest_of(data.configs[0]))
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest_of(data.configs[0])
    assert head.headers["Content-Length"] == str(len(data.configs[0]))
    assert head.get_data() == b""
    assert pulled.blob("GET", dummy).status_code == 404
    got = pulled.blob("GET", digest_of(data.configs[0]))
    assert got.status_code == 200
    assert got.get_data() == data.configs[0]


def test_pull_manifests_head_and_get_by_digest_and_tag(pulled, data):
    for method in ("HEAD", "GET"):
        missing = pulled.manifest(method, NONEXISTENT_MANIFEST)
        assert missing.status_code == 404, method
        for reference, raw in ((digest_of(data.manifests[0]), data.manifests[0]),
                               (digest_of(data.manifests[1]), data.manifests[1]),
                               ("tagtest0", data.manifests[0])):
            response = pulled.manifest(method, reference)
            assert response.status_code == 200, (method, reference)
            assert response.headers["Docker-Content-Digest"] == digest_of(raw)
            assert response.headers["Content-Type"] == oci.OCI_MANIFEST
            assert response.headers["Content-Length"] == str(len(raw))
            assert response.get_data() == (raw if method == "GET" else b"")


def test_pull_error_codes_are_oci_conforming(pulled, data):
    """GET of ``sha256:totallywrong`` answers 400 or 404; a 400 names a code of the spec."""
    got = pulled.request("GET", "/v2/<name>/manifests/sha256:totallywrong", data=b"blablabla",
                         headers={"Content-Type": oci.OCI_MANIFEST})
    assert got.status_code in (400, 404)
    assert code(got) in ERROR_CODES
    put = pulled.put_manifest("sha256:totallywrong", b"blablabla")
    assert put.status_code == 400
    assert code(put) in ERROR_CODES


def test_pull_teardown_deletes_manifests_then_blobs(pulled, data):
    for raw in data.manifests[:2]:
        assert pulled.request("DELETE", f"/v2/<name>/manifests/{digest_of(raw)}").status_code == 202
    for blob in (data.configs[0], data.configs[1], LAYER):
        response = pulled.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}")
        assert response.status_code in (202, 404)
        assert pulled.blob("HEAD", digest_of(blob)).status_code == 404


def test_pull_teardown_with_blobs_deleted_before_manifests(pulled, data):
    """``OCI_DELETE_MANIFEST_BEFORE_BLOBS=false``: blobs first (2xx or 404), then the manifests (2xx)."""
    for blob in (data.configs[0], data.configs[1], LAYER):
        assert pulled.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code in (202, 404)
    for raw in data.manifests[:2]:
        assert pulled.request("DELETE", f"/v2/<name>/manifests/{digest_of(raw)}").status_code == 202


# --- 02 push ------------------------------------------------------------------------------


def test_push_blob_upload_streamed(reg, data):
    start = reg.request("POST", "/v2/<name>/blobs/uploads/")
    assert start.status_code == 202 and start.headers["Location"]
    patched = reg.request("PATCH", start.headers["Location"], data=data.blob_a,
                          headers={"Content-Type": "application/octet-stream"})
    assert patched.status_code == 202
    done = reg.request("PUT", patched.headers["Location"], query_string={"digest": digest_of(data.blob_a)},
                       headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201
    assert done.headers["Location"]
    assert reg.blob("GET", digest_of(data.blob_a)).get_data() == data.blob_a


def test_push_blob_upload_monolithic(reg, data):
    config = data.configs[1]
    assert reg.blob("GET", digest_of(b"hello world")).status_code == 404
    single = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": digest_of(config)},
                         data=config, headers={"Content-Type": "application/octet-stream",
                                               "Content-Length": str(len(config))})
    assert single.status_code in (201, 202)
    assert single.headers["Location"]
    assert reg.blob("GET", digest_of(config)).status_code == (200 if single.status_code == 201 else 404)
    session = reg.request("POST", "/v2/<name>/blobs/uploads/")
    assert session.status_code == 202
    put = reg.request("PUT", session.headers["Location"], query_string={"digest": digest_of(config)}, data=config,
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(config))})
    assert put.status_code == 201 and put.headers["Location"]
    assert reg.blob("GET", digest_of(config)).status_code == 200
    assert reg.push_blob(LAYER) == digest_of(LAYER)
    assert reg.blob("GET", digest_of(LAYER)).status_code == 200


def test_push_blob_upload_chunked(reg, data):
    blob = data.blob_b
    first, second = blob[:22], blob[22:]
    start = reg.request("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"})
    assert start.status_code == 202 and start.headers["Location"]
    out_of_order = reg.request("PATCH", start.headers["Location"], data=second, headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(len(second)),
        "Content-Range": f"{len(first)}-{len(blob) - 1}"})
    assert out_of_order.status_code == 416
    start = reg.request("POST", "/v2/<name>/blobs/uploads/", headers={"Content-Length": "0"})
    chunk = {"Content-Type": "application/octet-stream", "Content-Length": str(len(first)),
             "Content-Range": f"0-{len(first) - 1}"}
    patched = reg.request("PATCH", start.headers["Location"], data=first, headers=chunk)
    assert patched.status_code == 202
    assert patched.headers["Range"] == f"0-{len(first) - 1}"
    assert reg.request("PATCH", start.headers["Location"], data=first, headers=chunk).status_code == 416
    status = reg.request("GET", start.headers["Location"])
    assert status.status_code == 204
    assert status.headers["Location"]
    assert status.headers["Range"] == f"0-{len(first) - 1}"
    patched = reg.request("PATCH", status.headers["Location"], data=second, headers={
        "Content-Type": "application/octet-stream", "Content-Length": str(len(second)),
        "Content-Range": f"{len(first)}-{len(blob) - 1}"})
    assert patched.status_code == 202
    assert patched.headers["Range"] == f"0-{len(blob) - 1}"
    assert patched.headers["Location"]
    done = reg.request("PUT", patched.headers["Location"], query_string={"digest": digest_of(blob)},
                       headers={"Content-Type": "application/octet-stream", "Content-Length": "0"})
    assert done.status_code == 201 and done.headers["Location"]


def test_push_cross_repository_blob_mount(reg, data):
    cross = Registry(reg.client, reg.auth, CROSS)
    without_from = cross.request("POST", "/v2/<name>/blobs/uploads/",
                                 query_string={"mount": digest_of(b"hello world")})
    assert without_from.status_code == 202
    assert without_from.headers["Location"]
    reg.push_blob(data.blob_a)
    mounted = cross.request("POST", "/v2/<name>/blobs/uploads/",
                            query_string={"mount": digest_of(data.blob_a), "from": NAME})
    assert mounted.status_code in (201, 202)
    if mounted.status_code == 201:
        assert mounted.headers["Location"] == f"/v2/{CROSS}/blobs/{digest_of(data.blob_a)}"
        assert cross.request("GET", mounted.headers["Location"]).status_code == 200
    else:
        assert mounted.headers["Location"].startswith(f"/v2/{CROSS}/blobs/uploads/")
    # automatic content discovery: without ``from`` the registry finds the blob itself
    assert cross.request("POST", "/v2/<name>/blobs/uploads/",
                         query_string={"mount": digest_of(data.blob_a)}).status_code == 201


@pytest.fixture
def pushed(reg, data) -> Registry:
    """Push setup and ``Manifest Upload``: the manifests of 02_push_test.go."""
    for blob in (EMPTY_JSON, data.ref_blob_a, data.configs[0], data.configs[1], LAYER):
        reg.push_blob(blob)
    assert reg.manifest("GET", NONEXISTENT_MANIFEST).status_code == 404
    for number in range(4):
        reg.push_manifest(f"test{number}", data.manifests[1])
    reg.push_manifest("emptylayer", data.empty_layer_manifest)
    reg.push_manifest(digest_of(data.config_type_manifest), data.config_type_manifest)
    reg.push_manifest(digest_of(data.artifact_type_manifest), data.artifact_type_manifest)
    reg.push_manifest("tagtest0", data.manifests[0])
    return reg


def test_push_manifests_image_index_nested_index_and_dangling_subject(pushed, data):
    assert pushed.manifest("GET", digest_of(data.manifests[1])).status_code == 200
    index = pretty({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "artifactType": "application/vnd.oci.index",
                    "manifests": [desc(oci.OCI_MANIFEST, data.manifests[0])],
                    "annotations": {ANNOTATION_KEY: "test index"}})
    pushed.push_manifest(digest_of(index), index, oci.OCI_INDEX)
    nested = pretty({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "artifactType": "application/vnd.oci.index",
                     "manifests": [desc(oci.OCI_INDEX, index)], "annotations": {ANNOTATION_KEY: "test index"}})
    pushed.push_manifest(digest_of(nested), nested, oci.OCI_INDEX)
    pushed.push_blob(data.ref_blob_b)
    dangling = pushed.push_manifest(digest_of(data.dangling_referrer), data.dangling_referrer)
    assert dangling.headers["OCI-Subject"] == digest_of(data.manifests[3])


def test_push_teardown(pushed, data):
    for raw in (data.manifests[1], data.config_type_manifest, data.artifact_type_manifest,
                data.empty_layer_manifest):
        assert pushed.request("DELETE", f"/v2/<name>/manifests/{digest_of(raw)}").status_code == 202
    assert pushed.tags() == ["tagtest0"]  # test0..test3 and emptylayer went with their manifests
    for blob in (data.configs[1], LAYER, EMPTY_JSON):
        assert pushed.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code in (202, 404)
    # the layer is still needed by manifest[0] (tagtest0): hidden from the registry, kept for the manifest
    assert pushed.blob("HEAD", digest_of(LAYER)).status_code == 404
    assert pushed.manifest("GET", "tagtest0").status_code == 200
