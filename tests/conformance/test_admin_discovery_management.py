"""Content discovery (``03_discovery_test.go``) and management (``04_management_test.go``) on the admin ``/v2/``."""
from __future__ import annotations

import pytest

from pulp_registry import oci
from tests.conformance.suite import (ANNOTATION_KEY, ARTIFACT_A, ARTIFACT_B, EMPTY_JSON, LAYER,
                                     Registry, digest_of, ok)


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
