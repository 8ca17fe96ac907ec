"""Crane against the pull cases of the OCI conformance suite, in read-only mode.

Read-only mode is how the suite tests a registry it cannot push to: ``01_pull_test.go`` with
``OCI_TAG_NAME``/``OCI_MANIFEST_DIGEST``/``OCI_BLOB_DIGEST`` naming existing content, and run.go's
``read-only`` data (tags, manifests, blobs, referrers given in its configuration) with push,
delete and blob-range tests disabled. The content is pushed to the admin side, published by the
real publish code, and pulled from Crane.
"""
from __future__ import annotations

from typing import Any

import pytest

from pulp_registry import oci
from pulp_registry.repositories import find_repository_by_name
from tests.conformance.suite import (ARTIFACT_A, ARTIFACT_B, LAYER, MANIFEST_ACCEPT, NAME,
                                                      NONEXISTENT_MANIFEST, EMPTY_JSON, ERROR_CODES, Registry,
                                                      SuiteData, digest_of, random_blob)
from tests.crane.conftest import CraneUnderTest, error_code
from tests.crane.content import Publisher


class Pull:
    def __init__(self, crane: CraneUnderTest) -> None:
        self.crane = crane

    def manifest(self, method: str, reference: str) -> Any:
        return self.crane.client.open(f"/v2/{NAME}/manifests/{reference}", method=method,
                                      headers={"Accept": MANIFEST_ACCEPT})

    def blob(self, method: str, digest: str, headers: dict[str, str] | None = None) -> Any:
        return self.crane.client.open(f"/v2/{NAME}/blobs/{digest}", method=method, headers=headers or {})

    def referrers(self, digest: str, **query: Any) -> Any:
        response = self.crane.client.get(f"/v2/{NAME}/referrers/{digest}", query_string=query)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == oci.OCI_INDEX
        return response


@pytest.fixture
def data() -> SuiteData:
    return SuiteData()


@pytest.fixture
def pull(client, auth, services, data) -> Pull:
    """The pull setup pushed to the admin side and published: what ``OCI_*`` would name."""
    reg = Registry(client, auth)
    for blob in (data.configs[0], data.configs[1], data.configs[4], LAYER, EMPTY_JSON, data.ref_blob_a,
                 data.ref_blob_b, random_blob(2048, 16)):
        reg.push_blob(blob)
    reg.push_manifest("tagtest0", data.manifests[0])
    reg.push_manifest(digest_of(data.manifests[1]), data.manifests[1])
    reg.push_manifest("image4", data.manifests[4])
    for raw in (data.referrer_a, data.referrer_b):
        reg.push_manifest(digest_of(raw), raw)
    publisher = Publisher(services)
    publisher.publish(find_repository_by_name(services.db, NAME))
    return Pull(CraneUnderTest(publisher.published_dir))


def test_pull_blobs(pull, data):
    dummy = digest_of(b"hello world")
    config = digest_of(data.configs[0])
    assert pull.blob("HEAD", dummy).status_code == 404
    head = pull.blob("HEAD", config)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == config
    assert head.headers["Content-Length"] == str(len(data.configs[0]))
    assert head.get_data() == b""
    missing = pull.blob("GET", dummy)
    assert missing.status_code == 404 and error_code(missing) == "BLOB_UNKNOWN"
    got = pull.blob("GET", config)
    assert got.status_code == 200 and got.get_data() == data.configs[0]


def test_pull_manifests(pull, data):
    for method in ("HEAD", "GET"):
        assert pull.manifest(method, NONEXISTENT_MANIFEST).status_code == 404
        for reference, raw in ((digest_of(data.manifests[0]), data.manifests[0]),
                               (digest_of(data.manifests[1]), data.manifests[1]), ("tagtest0", data.manifests[0])):
            response = pull.manifest(method, reference)
            assert response.status_code == 200, (method, reference)
            assert response.headers["Docker-Content-Digest"] == digest_of(raw)
            assert response.headers["Content-Type"] == oci.OCI_MANIFEST
            assert response.headers["Content-Length"] == str(len(raw))
            assert response.get_data() == (raw if method == "GET" else b"")
    assert error_code(pull.manifest("GET", NONEXISTENT_MANIFEST)) == "MANIFEST_UNKNOWN"


def test_pull_error_codes(pull):
    response = pull.crane.client.get(f"/v2/{NAME}/manifests/sha256:totallywrong",
                                     headers={"Content-Type": oci.OCI_MANIFEST}, data=b"blablabla")
    assert response.status_code in (400, 404)
    assert error_code(response) in ERROR_CODES
    assert pull.manifest("HEAD", "sha256:baddigeststring").status_code == 404


def test_missing_manifests_by_digest_and_tag(pull):
    assert pull.manifest("GET", digest_of(random_blob(1024, 3))).status_code == 404
    missing = pull.manifest("GET", "missing-abcdefghij0123456789")
    assert missing.status_code == 404 and error_code(missing) == "MANIFEST_UNKNOWN"


def test_tags_list_and_the_last_parameter(pull):
    listed = pull.crane.client.get(f"/v2/{NAME}/tags/list").get_json()["tags"]
    assert listed == ["image4", "tagtest0"]
    after = pull.crane.client.get(f"/v2/{NAME}/tags/list", query_string={"last": "image4"}).get_json()["tags"]
    assert after == ["tagtest0"]
    first = pull.crane.client.get(f"/v2/{NAME}/tags/list", query_string={"n": 1})
    assert first.get_json()["tags"] == ["image4"] and first.headers["Link"]


def test_referrers_listed_and_filtered(pull, data):
    subject = digest_of(data.manifests[4])
    listed = {entry["digest"]: entry for entry in pull.referrers(subject).get_json()["manifests"]}
    assert set(listed) == {digest_of(data.referrer_a), digest_of(data.referrer_b)}
    assert listed[digest_of(data.referrer_a)]["artifactType"] == ARTIFACT_A
    filtered = pull.referrers(subject, artifactType=ARTIFACT_B)
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [entry["digest"] for entry in filtered.get_json()["manifests"]] == [digest_of(data.referrer_b)]
    empty = pull.referrers(digest_of(b"random subject")).get_json()
    assert empty == {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}


def test_blob_range_requests(pull):
    blob = random_blob(2048, 16)
    digest = digest_of(blob)
    for header, (first, last) in {"bytes=500-1499": (500, 1499), "bytes=500-": (500, 2047),
                                  "bytes=-500": (1548, 2047), "bytes=2000-5000": (2000, 2047)}.items():
        response = pull.blob("GET", digest, {"Range": header})
        assert response.status_code == 206, header
        assert response.get_data() == blob[first:last + 1]
        assert response.headers["Content-Length"] == str(last - first + 1)
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/2048"
    for header in ("bytes=500-0", "bytes=5000-10000"):
        response = pull.blob("GET", digest, {"Range": header})
        assert response.status_code == 416, header
        assert response.headers["Content-Range"] == "bytes */2048"


def test_writes_are_refused_as_unsupported(pull, data):
    for method, path in (("DELETE", f"/v2/{NAME}/manifests/tagtest0"),
                         ("DELETE", f"/v2/{NAME}/blobs/{digest_of(data.configs[0])}"),
                         ("POST", f"/v2/{NAME}/blobs/uploads/")):
        response = pull.crane.client.open(path, method=method)
        assert response.status_code == 405 and error_code(response) == "UNSUPPORTED"
