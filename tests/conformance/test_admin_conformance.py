"""The admin ``/v2/`` against every case of the OCI distribution-spec conformance suite.

The Go suite (opencontainers/distribution-spec ``conformance/``) cannot run here, so each of its
cases is written again with the Flask test client: the four workflows of the ginkgo suite
(``01_pull_test.go``, ``02_push_test.go``, ``03_discovery_test.go``, ``04_management_test.go``,
with the test data of ``setup.go``), and what the newer runner on ``main`` (``run.go``) adds:
every blob push API, cancelled uploads, ``Range`` requests, blob/tag/manifest DELETE followed by
the check that it took effect at once, referrers with ``artifactType`` filters, the data shapes it
pushes (index, nested and empty index, artifacts, subjects, non-distributable layers, descriptors
with ``data``, unknown fields, no layers, sha512), and its error cases. Each test names the
suite's case it stands for; status codes and headers are the ones the suite accepts.
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

import pytest

from pulp_registry import oci

NAME = "conformance/repo"
CROSS = "conformance/crossmount"
ERROR_CODES = {"BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
               "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_UNVERIFIED",
               "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "TAG_INVALID", "UNAUTHORIZED", "DENIED",
               "UNSUPPORTED"}
MANIFEST_ACCEPT = f"{oci.OCI_INDEX}, {oci.OCI_MANIFEST}"
LAYER = base64.b64decode(
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0"
    "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD"
    "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA")
EMPTY_JSON = b"{}"
NONEXISTENT_MANIFEST = ".INVALID_MANIFEST_NAME"
ANNOTATION_KEY = "org.opencontainers.conformance.test"
ARTIFACT_A = "application/vnd.nhl.peanut.butter.bagel"
ARTIFACT_B = "application/vnd.nba.strawberry.jam.croissant"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def pretty(doc: dict[str, Any]) -> bytes:
    """``json.MarshalIndent(doc, "", "\\t")``, as the suite serializes its manifests."""
    return json.dumps(doc, indent="\t").encode()


def desc(media_type: str, content: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(content), "size": len(content), **extra}


def random_blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class SuiteData:
    """``setup.go``'s data: one config and one manifest per workflow, blobs, referrers."""

    def __init__(self) -> None:
        self.configs = [pretty({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                                "author": f"author-{number}"}) for number in range(5)]
        self.layer_desc = desc(oci.OCI_LAYER_GZIP, LAYER)
        self.manifests = [pretty({
            "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
            "config": desc(oci.OCI_CONFIG, config, data=base64.b64encode(config).decode(),
                           newUnspecifiedField=base64.b64encode(b"hello world").decode()),
            "layers": [self.layer_desc]}) for config in self.configs]
        self.empty_desc = desc(oci.OCI_EMPTY, EMPTY_JSON)
        self.blob_a = random_blob(42, 1)
        self.blob_b = random_blob(42, 2)
        self.ref_blob_a = b"NHL Peanut Butter on my NHL bagel"
        self.ref_blob_b = b"NBA Strawberry Jam on my NBA croissant"
        self.empty_layer_manifest = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                            "config": desc(oci.OCI_CONFIG, self.configs[1]),
                                            "layers": [self.empty_desc]})
        self.config_type_manifest = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                            "config": desc(ARTIFACT_A, self.ref_blob_a), "layers": [self.layer_desc]})
        self.artifact_type_manifest = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                              "artifactType": ARTIFACT_A, "config": self.empty_desc,
                                              "layers": [desc(ARTIFACT_A, self.ref_blob_a)]})
        self.annotated_manifest = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                          "config": desc(oci.OCI_CONFIG, self.configs[0]),
                                          "layers": [self.layer_desc],
                                          "annotations": {ANNOTATION_KEY: "test annotation"}})
        subject4 = desc(oci.OCI_MANIFEST, self.manifests[4])
        self.referrer_a = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                  "config": desc(ARTIFACT_A, self.ref_blob_a), "subject": subject4,
                                  "layers": [self.empty_desc], "annotations": {ANNOTATION_KEY: "test config a"}})
        self.referrer_b = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "artifactType": ARTIFACT_B,
                                  "config": self.empty_desc, "subject": subject4,
                                  "layers": [desc(ARTIFACT_B, self.ref_blob_b)],
                                  "annotations": {ANNOTATION_KEY: "test layer b"}})
        self.referrer_copying_annotation = pretty({
            "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "artifactType": ARTIFACT_A,
            "config": self.empty_desc, "subject": desc(oci.OCI_MANIFEST, self.annotated_manifest),
            "layers": [desc(ARTIFACT_A, self.ref_blob_a)], "annotations": {ANNOTATION_KEY: "test annotation"}})
        self.dangling_referrer = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                         "artifactType": ARTIFACT_B, "config": self.empty_desc,
                                         "subject": desc(oci.OCI_MANIFEST, self.manifests[3]),
                                         "layers": [desc(ARTIFACT_B, self.ref_blob_b)]})


class Registry:
    """What the suite's ``reggie`` client does, through the Flask test client as the admin."""

    def __init__(self, client: Any, auth: dict[str, str], name: str = NAME) -> None:
        self.client, self.auth, self.name = client, auth, name

    def request(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        path = path.replace("<name>", self.name)
        return self.client.open(path, method=method, headers={**self.auth, **(headers or {})}, **kwargs)

    def push_blob(self, data: bytes, name: str | None = None) -> str:
        """POST a session, then PUT the whole blob (the suite's setup)."""
        repo = name or self.name
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202 and start.headers["Location"]
        done = self.request("PUT", start.headers["Location"], query_string={"digest": digest_of(data)}, data=data,
                            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        assert 200 <= done.status_code < 300, done.get_data(as_text=True)
        return digest_of(data)

    def put_manifest(self, reference: str, raw: bytes, media_type: str = oci.OCI_MANIFEST) -> Any:
        return self.request("PUT", f"/v2/<name>/manifests/{reference}", data=raw,
                            headers={"Content-Type": media_type})

    def push_manifest(self, reference: str, raw: bytes, media_type: str = oci.OCI_MANIFEST) -> Any:
        response = self.put_manifest(reference, raw, media_type)
        assert response.status_code == 201, response.get_data(as_text=True)
        assert response.headers["Location"]
        assert response.headers["Docker-Content-Digest"] == digest_of(raw)
        return response

    def manifest(self, method: str, reference: str) -> Any:
        return self.request(method, f"/v2/<name>/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})

    def blob(self, method: str, digest: str, headers: dict[str, str] | None = None) -> Any:
        return self.request(method, f"/v2/<name>/blobs/{digest}", headers=headers)

    def tags(self, **query: Any) -> list[str]:
        response = self.request("GET", "/v2/<name>/tags/list", query_string=query)
        assert response.status_code == 200
        return response.get_json()["tags"]

    def referrers(self, digest: str, **query: Any) -> Any:
        response = self.request("GET", f"/v2/<name>/referrers/{digest}", query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Content-Type"] == oci.OCI_INDEX
        return response


def ok(response: Any) -> bool:
    return 200 <= response.status_code < 300


def code(response: Any) -> str:
    return response.get_json()["errors"][0]["code"]


@pytest.fixture
def data() -> SuiteData:
    return SuiteData()


@pytest.fixture
def reg(client, auth) -> Registry:
    return Registry(client, auth)


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


# --- 03 content discovery ------------------------------------------------------------------


@pytest.fixture
def discovered(reg, data) -> Registry:
    for blob in (data.configs[2], LAYER, EMPTY_JSON, data.configs[0], data.configs[4], data.ref_blob_a,
                 data.ref_blob_b):
        reg.push_blob(blob)
    for number in range(4):
        for tag in (f"test{number}", f"TEST{number}"):
            assert ok(reg.put_manifest(tag, data.manifests[2]))
    reg.push_manifest("tagtest0", data.manifests[4])
    reg.push_manifest(digest_of(data.annotated_manifest), data.annotated_manifest)
    return reg


def test_discovery_manifests_with_a_subject_answer_oci_subject(discovered, data):
    for raw in (data.referrer_a, data.referrer_b):
        assert discovered.push_manifest(digest_of(raw), raw).headers["OCI-Subject"] == digest_of(data.manifests[4])
    copy = discovered.push_manifest(digest_of(data.referrer_copying_annotation), data.referrer_copying_annotation)
    assert copy.headers["OCI-Subject"] == digest_of(data.annotated_manifest)
    dangling = discovered.push_manifest(digest_of(data.dangling_referrer), data.dangling_referrer)
    assert dangling.headers["OCI-Subject"] == digest_of(data.manifests[3])


def test_discovery_tags_list_is_sorted_limited_by_n_and_started_after_last(discovered):
    tags = discovered.tags()
    assert tags == sorted(tags) and len(tags) == 9
    half = len(tags) // 2
    first_page = discovered.tags(n=half)
    assert len(first_page) == half
    after = discovered.tags(n=half, last=first_page[-1])
    assert len(after) <= half and first_page[-1] not in after
    assert discovered.tags(last=tags[half - 1]) == tags[half:]  # run.go: ``last`` alone


def test_discovery_referrers_list_filter_missing_subject_and_annotations(discovered, data):
    for raw in (data.referrer_a, data.referrer_b, data.referrer_copying_annotation, data.dangling_referrer):
        discovered.push_manifest(digest_of(raw), raw)
    listed = discovered.referrers(digest_of(data.manifests[4])).get_json()
    assert listed["mediaType"] == oci.OCI_INDEX and listed["schemaVersion"] == 2
    assert len(listed["manifests"]) == 2
    by_digest = {entry["digest"]: entry for entry in listed["manifests"]}
    assert by_digest[digest_of(data.referrer_a)] == {
        "mediaType": oci.OCI_MANIFEST, "digest": digest_of(data.referrer_a), "size": len(data.referrer_a),
        "artifactType": ARTIFACT_A, "annotations": {ANNOTATION_KEY: "test config a"}}
    assert by_digest[digest_of(data.referrer_b)]["artifactType"] == ARTIFACT_B
    filtered = discovered.referrers(digest_of(data.manifests[4]), artifactType=ARTIFACT_B)
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in filtered.get_json()["manifests"]] == [digest_of(data.referrer_b)]
    assert "OCI-Filters-Applied" not in discovered.referrers(digest_of(data.manifests[4])).headers
    missing = discovered.referrers(digest_of(data.manifests[3])).get_json()["manifests"]
    assert [entry["digest"] for entry in missing] == [digest_of(data.dangling_referrer)]
    copied = discovered.referrers(digest_of(data.annotated_manifest)).get_json()["manifests"]
    assert len(copied) == 1 and copied[0]["annotations"][ANNOTATION_KEY] == "test annotation"
    nothing = discovered.referrers(digest_of(b"nothing refers to this")).get_json()
    assert nothing == {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}


def test_discovery_teardown(discovered, data):
    for raw in (data.referrer_a, data.referrer_b, data.dangling_referrer):
        discovered.push_manifest(digest_of(raw), raw)
    for raw in (data.manifests[2], data.manifests[4], data.referrer_a, data.referrer_b, data.dangling_referrer):
        assert discovered.request("DELETE", f"/v2/<name>/manifests/{digest_of(raw)}").status_code in (202, 404)
        assert discovered.manifest("HEAD", digest_of(raw)).status_code == 404
    for blob in (data.configs[2], data.configs[4], EMPTY_JSON, LAYER):
        assert discovered.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code in (202, 404)


# --- 04 content management -------------------------------------------------------------------


def test_management_delete_tag_then_manifest_then_blobs(reg, data):
    for blob in (data.configs[3], LAYER, data.configs[0]):
        reg.push_blob(blob)
    reg.push_manifest("tagtest0", data.manifests[3])
    reg.push_manifest(digest_of(data.manifests[0]), data.manifests[0])
    reg.push_manifest("keep", data.manifests[0])
    number_of_tags = len(reg.tags())
    assert reg.request("DELETE", "/v2/<name>/manifests/tagtest0").status_code == 202
    assert reg.request("DELETE", f"/v2/<name>/manifests/{digest_of(data.manifests[0])}").status_code == 202
    assert len(reg.tags()) == number_of_tags - 2  # tagtest0, and keep with the manifest it named
    # manifest[3] lost its tag but stays: its config and layer may still be deleted (202) ...
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest_of(data.configs[3])}").status_code == 202
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest_of(LAYER)}").status_code == 202
    # ... and are gone from the registry at once (stored on for manifest[3] until it goes)
    assert reg.blob("GET", digest_of(data.configs[3])).status_code == 404
    assert reg.blob("HEAD", digest_of(LAYER)).status_code == 404
    assert reg.manifest("GET", digest_of(data.manifests[3])).status_code == 200


def test_management_last_tag_deleted_tags_list_is_empty_or_404(reg, data):
    reg.push_blob(data.configs[3])
    reg.push_blob(LAYER)
    reg.push_manifest("only", data.manifests[3])
    assert reg.request("DELETE", "/v2/<name>/manifests/only").status_code == 202
    response = reg.request("GET", "/v2/<name>/tags/list")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert response.get_json()["tags"] == []


# --- run.go (distribution-spec main): blob APIs ----------------------------------------------


def test_blob_post_only_head_get_and_delete_at_once(reg):
    blob = random_blob(512, 10)
    response = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": digest_of(blob)},
                           data=blob, headers={"Content-Type": "application/octet-stream",
                                               "Content-Length": str(len(blob))})
    assert response.status_code == 201 and response.headers["Location"]
    head = reg.blob("HEAD", digest_of(blob))
    assert head.status_code == 200 and head.headers["Content-Length"] == "512" and head.get_data() == b""
    got = reg.blob("GET", digest_of(blob))
    assert got.get_data() == blob and got.headers["Content-Length"] == "512"
    assert got.headers["Docker-Content-Digest"] == digest_of(blob)
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code == 202
    assert reg.blob("HEAD", digest_of(blob)).status_code == 404  # blob-delete finished immediately


def test_blob_chunked_in_several_chunks_and_with_the_last_chunk_in_the_put(reg):
    blob = random_blob(3 * 1000 - 5, 11)
    for put_last_chunk in (False, True):
        location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
        chunks = [blob[i:i + 1000] for i in range(0, len(blob), 1000)]
        sent = 0
        for chunk in chunks[:-1] if put_last_chunk else chunks:
            response = reg.request("PATCH", location, data=chunk, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{sent}-{sent + len(chunk) - 1}"})
            assert response.status_code == 202
            sent += len(chunk)
            location = response.headers["Location"]
        last = chunks[-1] if put_last_chunk else b""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(last))}
        if last:
            headers["Content-Range"] = f"{sent}-{len(blob) - 1}"
        done = reg.request("PUT", location, query_string={"digest": digest_of(blob)}, data=last, headers=headers)
        assert done.status_code == 201, done.get_data(as_text=True)
        assert reg.blob("GET", digest_of(blob)).get_data() == blob


def test_blob_post_cancel(reg):
    blob = random_blob(512, 12)
    start = reg.request("POST", "/v2/<name>/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    patched = reg.request("PATCH", location, data=blob[:100], headers={"Content-Type": "application/octet-stream"})
    assert patched.status_code == 202
    cancelled = reg.request("DELETE", location)
    assert cancelled.status_code == 204
    after = reg.request("GET", location)
    assert after.status_code == 404
    assert code(after) == "BLOB_UPLOAD_UNKNOWN"
    put = reg.request("PUT", location, query_string={"digest": digest_of(blob)}, data=blob)
    assert put.status_code == 404 and code(put) == "BLOB_UPLOAD_UNKNOWN"
    assert reg.blob("GET", digest_of(blob)).status_code == 404
    again = reg.request("DELETE", location)
    assert again.status_code == 404 and code(again) == "BLOB_UPLOAD_UNKNOWN"


def test_blob_mount_from_a_repository_anonymous_and_missing(reg, client, auth):
    other = Registry(client, auth, "conformance/repo2")
    for seed, query in ((13, lambda digest: {"mount": digest, "from": other.name}),
                        (14, lambda digest: {"mount": digest})):
        blob = random_blob(512, seed)
        other.push_blob(blob)
        mounted = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string=query(digest_of(blob)))
        assert mounted.status_code == 201 and mounted.headers["Location"]
        assert reg.blob("GET", digest_of(blob)).get_data() == blob
        for holder in (reg, other):
            assert holder.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code == 202
            assert holder.blob("HEAD", digest_of(blob)).status_code == 404
    missing = random_blob(512, 15)
    fallback = reg.request("POST", "/v2/<name>/blobs/uploads/",
                           query_string={"mount": digest_of(missing), "from": other.name})
    assert fallback.status_code == 202  # not mounted: an upload session instead
    assert fallback.headers["Location"].startswith(f"/v2/{NAME}/blobs/uploads/")


def test_blob_range_requests(reg):
    blob = random_blob(2048, 16)
    digest = reg.push_blob(blob)
    cases = {"bytes=500-1499": (500, 1499), "bytes=500-": (500, 2047), "bytes=-500": (1548, 2047),
             "bytes=2000-5000": (2000, 2047)}
    for header, (first, last) in cases.items():
        response = reg.blob("GET", digest, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.get_data() == blob[first:last + 1]
        assert response.headers["Content-Length"] == str(last - first + 1)
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/2048"
        assert response.headers["Docker-Content-Digest"] == digest
    for header in ("bytes=500-0", "bytes=5000-10000"):
        response = reg.blob("GET", digest, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["Content-Range"] == "bytes */2048"
    assert reg.blob("GET", digest).status_code == 200  # no Range: the whole blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202


@pytest.mark.parametrize("blob", [b"", EMPTY_JSON], ids=["empty", "emptyJSON"])
def test_well_known_blob_contents(reg, blob):
    digest = reg.push_blob(blob)
    head = reg.blob("HEAD", digest)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(blob))
    assert reg.blob("GET", digest).get_data() == blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202
    assert reg.blob("HEAD", digest).status_code == 404


def test_blob_pushes_with_a_bad_digest_are_refused_by_every_api(reg):
    blob = random_blob(2995, 17)
    wrong = digest_of(blob)
    corrupt = blob + b"oh no"
    headers = {"Content-Type": "application/octet-stream"}
    post_only = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": wrong}, data=corrupt,
                            headers=headers)
    assert post_only.status_code == 400 and code(post_only) == "DIGEST_INVALID"
    location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
    post_put = reg.request("PUT", location, query_string={"digest": wrong}, data=corrupt, headers=headers)
    assert post_put.status_code == 400 and code(post_put) == "DIGEST_INVALID"
    location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
    location = reg.request("PATCH", location, data=corrupt, headers=headers).headers["Location"]
    stream = reg.request("PUT", location, query_string={"digest": wrong}, headers=headers)
    assert stream.status_code == 400 and code(stream) == "DIGEST_INVALID"
    assert reg.blob("HEAD", wrong).status_code == 404


def test_blob_sha512(reg):
    blob = random_blob(512, 18)
    digest = digest_of(blob, "sha512")
    response = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": digest}, data=blob,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201
    assert reg.blob("GET", digest).get_data() == blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202
    assert reg.blob("HEAD", digest).status_code == 404


# --- run.go: the data shapes, each pushed, listed, pulled, queried and deleted ----------------


class Shapes:
    """Builds images the way run.go's ``genManifestFull``/``genIndexFull`` do, and remembers what to delete."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.blobs: dict[str, bytes] = {}
        self.manifests: list[tuple[str, bytes, str]] = []   # in push order
        self.tags: dict[str, str] = {}
        self.counter = 0

    def blob(self, data: bytes) -> str:
        self.blobs[digest_of(data)] = data
        return self.reg.push_blob(data)

    def manifest(self, doc: dict[str, Any], tag: str | None = None) -> tuple[str, bytes, str]:
        raw = pretty(doc)
        media_type = doc["mediaType"]
        self.reg.push_manifest(digest_of(raw), raw, media_type)
        if tag:
            self.reg.push_manifest(tag, raw, media_type)
            self.tags[tag] = digest_of(raw)
        self.manifests.append((digest_of(raw), raw, media_type))
        return digest_of(raw), raw, media_type

    def image(self, tag: str | None = None, layers: int = 1, artifact_type: str | None = None,
              config_media_type: str = oci.OCI_CONFIG, config: bytes | None = None,
              layer_media_type: str = oci.OCI_LAYER_GZIP, layer_bytes: bytes | None = None,
              subject: tuple[str, bytes, str] | None = None, annotations: dict[str, str] | None = None,
              platform: dict[str, str] | None = None, **extra: Any) -> tuple[str, bytes, str]:
        self.counter += 1
        config = config if config is not None else pretty({"architecture": "amd64", "os": "linux",
                                                           "seed": self.counter})
        self.blob(config)
        layer_descs = []
        for number in range(layers):
            layer = layer_bytes if layer_bytes is not None else random_blob(256, self.counter * 100 + number)
            self.blob(layer)
            layer_descs.append(desc(layer_media_type, layer))
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                               "config": desc(config_media_type, config), "layers": layer_descs, **extra}
        if artifact_type:
            doc["artifactType"] = artifact_type
        if subject:
            doc["subject"] = {"mediaType": subject[2], "digest": subject[0], "size": len(subject[1])}
        if annotations:
            doc["annotations"] = annotations
        return self.manifest(doc, tag)

    def index(self, children: list[tuple[str, bytes, str]], tag: str | None = None, **extra: Any):
        doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
            {"mediaType": media_type, "digest": digest, "size": len(raw),
             "platform": {"os": "linux", "architecture": f"arch{number}"}}
            for number, (digest, raw, media_type) in enumerate(children)], **extra}
        return self.manifest(doc, tag)

    def check_pull(self) -> None:
        """TestList, TestHead and TestPull: every tag listed, every manifest and blob served."""
        listed = self.reg.tags()
        assert set(self.tags) <= set(listed)
        for reference, (digest, raw) in [(tag, (digest, self.raw(digest))) for tag, digest in self.tags.items()] + [
                (digest, (digest, raw)) for digest, raw, _ in self.manifests]:
            for method in ("HEAD", "GET"):
                response = self.reg.manifest(method, reference)
                assert response.status_code == 200, (method, reference)
                assert response.headers["Docker-Content-Digest"] == digest
                assert response.headers["Content-Length"] == str(len(raw))
                assert response.get_data() == (raw if method == "GET" else b"")
        for digest, data in self.blobs.items():
            assert self.reg.blob("HEAD", digest).headers["Content-Length"] == str(len(data))
            assert self.reg.blob("GET", digest).get_data() == data

    def raw(self, digest: str) -> bytes:
        return next(raw for found, raw, _ in self.manifests if found == digest)

    def check_delete(self) -> None:
        """TestDelete: tags, then manifests newest first, then blobs; each gone at once (HEAD 404)."""
        for tag in self.tags:
            assert self.reg.request("DELETE", f"/v2/<name>/manifests/{tag}").status_code == 202, tag
            assert self.reg.manifest("HEAD", tag).status_code == 404
        for digest, _, _ in reversed(self.manifests):
            assert self.reg.request("DELETE", f"/v2/<name>/manifests/{digest}").status_code in (202, 404)
            assert self.reg.manifest("HEAD", digest).status_code == 404
        for digest in self.blobs:
            assert self.reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code in (202, 404)
            assert self.reg.blob("HEAD", digest).status_code == 404


@pytest.fixture
def shapes(reg) -> Shapes:
    return Shapes(reg)


def _platform_images(shapes: Shapes, count: int = 2, **kwargs: Any) -> list[tuple[str, bytes, str]]:
    return [shapes.image(**kwargs) for _ in range(count)]


@pytest.mark.parametrize("shape", ["image", "image-uncompressed", "large-manifest", "index", "nested-index",
                                   "empty-index", "artifact", "artifact-index", "artifact-without-layers",
                                   "data-field", "non-distributable-layers", "custom-fields", "no-layers"])
def test_data_shapes_push_pull_and_delete(shapes, shape):
    if shape == "image":
        shapes.image(tag="image")
    elif shape == "image-uncompressed":
        shapes.image(tag="image-uncompressed", layer_media_type=oci.OCI_LAYER)
    elif shape == "large-manifest":
        shapes.image(tag="large-manifest", annotations={f"large-annotation-{n}": "A" * 10000 for n in range(390)})
    elif shape == "index":
        shapes.index(_platform_images(shapes), tag="index")
    elif shape == "nested-index":
        first = shapes.index(_platform_images(shapes))
        second = shapes.index(_platform_images(shapes))
        shapes.index([first, second], tag="index-of-index")
    elif shape == "empty-index":
        shapes.index([], tag="index")
    elif shape == "artifact":
        shapes.image(tag="artifact", artifact_type="application/vnd.example.conf1", config_media_type=oci.OCI_EMPTY,
                     config=EMPTY_JSON, layer_media_type="application/vnd.example.conf1")
    elif shape == "artifact-index":
        children = _platform_images(shapes, artifact_type="application/vnd.example.conf1",
                                    config_media_type=oci.OCI_EMPTY, config=EMPTY_JSON,
                                    layer_media_type="application/vnd.example.conf1")
        shapes.index(children, tag="artifact-index", artifactType="application/vnd.example.conf1")
    elif shape == "artifact-without-layers":
        shapes.image(tag="artifact-without-layers", artifact_type="application/vnd.example.conf1",
                     config_media_type=oci.OCI_EMPTY, config=EMPTY_JSON, layer_media_type=oci.OCI_EMPTY,
                     layer_bytes=EMPTY_JSON)
    elif shape == "data-field":
        config = pretty({"architecture": "amd64", "os": "linux"})
        shapes.blob(config)
        layer = random_blob(256, 99)
        shapes.blob(layer)
        shapes.manifest({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                         "config": desc(oci.OCI_CONFIG, config, data=base64.b64encode(config).decode()),
                         "layers": [desc(oci.OCI_LAYER_GZIP, layer, data=base64.b64encode(layer).decode())]},
                        tag="data-field")
    elif shape == "non-distributable-layers":
        config = pretty({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}})
        shapes.blob(config)
        layer = random_blob(256, 98)
        shapes.blob(layer)
        foreign = [{"mediaType": media_type, "digest": digest_of(random_blob(256, seed)), "size": size,
                    "urls": [f"https://store.example.com/blobs/sha256/{seed}"]}
                   for media_type, seed, size in (("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                                                   1, 123456),
                                                  ("application/vnd.oci.image.layer.nondistributable.v1.tar",
                                                   2, 12345))]
        shapes.manifest({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": desc(oci.OCI_CONFIG, config),
                         "layers": foreign + [desc(oci.OCI_LAYER_GZIP, layer)]}, tag="non-distributable-image")
    elif shape == "custom-fields":
        children = _platform_images(shapes, **{"org.example.unknown": "custom value"})
        shapes.index(children, tag="custom-fields", **{"org.example.unknown": {"nested": True}})
    elif shape == "no-layers":
        shapes.image(tag="no-layers", layers=0)
    shapes.check_pull()
    shapes.check_delete()


def test_artifacts_with_subject_are_listed_filtered_and_deleted(shapes):
    subject = shapes.image(tag="image")
    plain = shapes.image(subject=subject)
    first = shapes.image(artifact_type="application/vnd.example.conf1", config_media_type=oci.OCI_EMPTY,
                         config=EMPTY_JSON, layer_media_type="application/vnd.example.conf1", subject=subject,
                         annotations={"org.opencontainers.conformance": "hello conformance test"},
                         tag="tagged-artifact1")
    second = shapes.image(artifact_type="application/vnd.example.conf2", config_media_type=oci.OCI_EMPTY,
                          config=EMPTY_JSON, layer_media_type="application/octet-stream", subject=subject,
                          annotations={"org.opencontainers.conformance": "hello conformance test"},
                          tag="tagged-artifact2")
    shapes.check_pull()
    listed = {entry["digest"]: entry for entry in shapes.reg.referrers(subject[0]).get_json()["manifests"]}
    assert set(listed) == {plain[0], first[0], second[0]}
    assert listed[plain[0]]["artifactType"] == oci.OCI_CONFIG  # the config media type stands in
    assert listed[first[0]] == {"mediaType": oci.OCI_MANIFEST, "digest": first[0], "size": len(first[1]),
                                "artifactType": "application/vnd.example.conf1",
                                "annotations": {"org.opencontainers.conformance": "hello conformance test"}}
    for artifact_type, expected in (("application/vnd.example.conf1", first), ("application/vnd.example.conf2", second),
                                    (oci.OCI_CONFIG, plain)):
        filtered = shapes.reg.referrers(subject[0], artifactType=artifact_type)
        assert "artifactType" in [part.strip() for part in filtered.headers["OCI-Filters-Applied"].split(",")]
        assert [entry["digest"] for entry in filtered.get_json()["manifests"]] == [expected[0]]
    shapes.check_delete()
    assert shapes.reg.referrers(subject[0]).get_json()["manifests"] == []


def test_an_index_with_a_subject_is_a_referrer(shapes):
    subject = shapes.index(_platform_images(shapes), tag="index")
    children = _platform_images(shapes, artifact_type="application/vnd.example.conf1",
                                config_media_type=oci.OCI_EMPTY, config=EMPTY_JSON,
                                layer_media_type="application/vnd.example.conf1")
    artifact_index = shapes.index(children, tag="tagged-artifact", artifactType="application/vnd.example.conf1",
                                  subject={"mediaType": oci.OCI_INDEX, "digest": subject[0],
                                           "size": len(subject[1])})
    shapes.check_pull()
    listed = shapes.reg.referrers(subject[0]).get_json()["manifests"]
    assert listed == [{"mediaType": oci.OCI_INDEX, "digest": artifact_index[0], "size": len(artifact_index[1]),
                       "artifactType": "application/vnd.example.conf1"}]
    shapes.check_delete()


def test_a_missing_subject_is_accepted_and_listed(shapes):
    missing = (digest_of(b"missing content"), b"x" * 123, oci.OCI_MANIFEST)
    artifact = shapes.image(artifact_type="application/vnd.example.conf1", config_media_type=oci.OCI_EMPTY,
                            config=EMPTY_JSON, subject=missing, tag="tagged-artifact")
    assert [entry["digest"] for entry in shapes.reg.referrers(missing[0]).get_json()["manifests"]] == [artifact[0]]
    shapes.check_pull()
    shapes.check_delete()


def test_sha512_manifests_by_digest(shapes):
    config = pretty({"architecture": "amd64", "os": "linux", "algorithm": "sha512"})
    layer = random_blob(256, 77)
    for blob in (config, layer):
        response = shapes.reg.request("POST", "/v2/<name>/blobs/uploads/",
                                      query_string={"digest": digest_of(blob, "sha512")}, data=blob)
        assert response.status_code == 201
    raw = pretty({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                  "config": {"mediaType": oci.OCI_CONFIG, "digest": digest_of(config, "sha512"), "size": len(config)},
                  "layers": [{"mediaType": oci.OCI_LAYER_GZIP, "digest": digest_of(layer, "sha512"),
                              "size": len(layer)}]})
    digest = digest_of(raw, "sha512")
    put = shapes.reg.put_manifest(digest, raw)
    assert put.status_code == 201 and put.headers["Docker-Content-Digest"] == digest
    assert shapes.reg.manifest("GET", digest).get_data() == raw
    assert shapes.reg.request("DELETE", f"/v2/<name>/manifests/{digest}").status_code == 202
    assert shapes.reg.manifest("HEAD", digest).status_code == 404


# --- run.go: empty repository, errors ----------------------------------------------------------


def test_an_empty_repository_lists_no_tags_and_no_referrers(reg):
    tags = reg.request("GET", "/v2/<name>/tags/list")
    assert tags.status_code in (200, 404)
    listed = reg.referrers(digest_of(b"random subject")).get_json()
    assert listed == {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}


def test_missing_manifests_by_digest_and_by_tag_are_404(reg, data):
    reg.push_blob(data.configs[0])
    reg.push_blob(LAYER)
    reg.push_manifest("present", data.manifests[0])
    assert reg.manifest("GET", digest_of(random_blob(1024, 5))).status_code == 404
    missing = reg.manifest("GET", "missing-abcdefghij0123456789")
    assert missing.status_code == 404 and code(missing) == "MANIFEST_UNKNOWN"


def test_invalid_digest_format_put_is_400_and_get_is_404(reg, data):
    reg.push_blob(data.configs[0])
    reg.push_blob(LAYER)
    put = reg.put_manifest("sha256:baddigeststring", data.manifests[0])
    assert put.status_code == 400 and code(put) == "DIGEST_INVALID"
    for method in ("GET", "HEAD"):
        assert reg.manifest(method, "sha256:baddigeststring").status_code == 404
    assert code(reg.manifest("GET", "sha256:baddigeststring")) == "MANIFEST_UNKNOWN"


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_refused(reg, data):
    reg.push_blob(data.configs[0])
    reg.push_blob(LAYER)
    response = reg.put_manifest(digest_of(data.manifests[0]), data.manifests[0] + b"  ")
    assert response.status_code == 400 and code(response) == "DIGEST_INVALID"
    assert reg.manifest("HEAD", digest_of(data.manifests[0])).status_code == 404


def test_every_v2_answer_says_the_api_version(reg, data):
    for response in (reg.request("GET", "/v2/"), reg.manifest("GET", NONEXISTENT_MANIFEST),
                     reg.request("DELETE", f"/v2/<name>/blobs/{digest_of(b'x')}"),
                     reg.request("GET", f"/v2/<name>/referrers/{digest_of(b'x')}")):
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize("header, expected", [
    (None, None), ("bytes=0-0", (0, 0)), ("bytes=10-", (10, 99)), ("bytes=-1", (99, 99)), ("bytes=-500", (0, 99)),
    ("bytes=90-200", (90, 99)), ("items=0-5", None), ("bytes=0-1,5-6", None)])
def test_byte_range_reads_one_range_of_a_blob(header, expected):
    assert oci.byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=100-", "bytes=-0", "bytes=-", "bytes=a-b", "bytes=100-200"])
def test_byte_range_refuses_what_cannot_be_satisfied(header):
    from pulp_registry.registry_errors import RangeNotSatisfiable

    with pytest.raises(RangeNotSatisfiable) as refused:
        oci.byte_range(header, 100)
    assert refused.value.status == 416 and refused.value.headers == {"Content-Range": "bytes */100"}
