"""The domain functions of ``pulp_registry.content``, called directly as the REST API and workers do."""
from __future__ import annotations

import pytest

from pulp_registry import content, oci
from pulp_registry.registry_errors import BlobUnknown, ManifestBlobUnknown, ManifestUnknown
from pulp_registry.repositories import create_repository
from tests.registry.conftest import descriptor, manifest_bytes, sha256


@pytest.fixture
def repo(services):
    return create_repository(services.db, "my/app")


def test_add_blob_twice_leaves_one_blob_and_one_association(services, repo):
    digest = content.store_blob(services, repo, b"layer")
    content.add_blob(services, repo, digest, 5)
    assert services.db.blobs.count_documents({"_id": digest}) == 1
    assert services.db.repo_blobs.count_documents({"repo_id": repo["_id"], "digest": digest}) == 1
    assert content.blob_size(services, repo["_id"], digest) == 5


def test_add_blob_refuses_a_blob_storage_does_not_have(services, repo):
    with pytest.raises(BlobUnknown):
        content.add_blob(services, repo, sha256(b"not stored"), 10)
    digest = content.store_blob(services, repo, b"stored")
    with pytest.raises(BlobUnknown):
        content.add_blob(services, repo, digest, 999)
    assert services.db.repo_blobs.count_documents({}) == 1


def test_store_manifest_records_what_it_needs_and_tags_it(services, repo):
    config = content.store_blob(services, repo, b"{}")
    layer = content.store_blob(services, repo, b"layer")
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": descriptor(oci.OCI_CONFIG, b"{}"),
                          "layers": [descriptor(oci.OCI_LAYER, b"layer")],
                          "annotations": {"a.b": "c"}})
    manifest = content.store_manifest(services, repo, raw, oci.OCI_MANIFEST, "latest")
    assert manifest.digest == sha256(raw)
    doc = services.db.manifests.find_one({"_id": manifest.digest})
    assert doc["blob_digests"] == [config, layer]
    assert doc["config_digest"] == config and doc["config_media_type"] == oci.OCI_CONFIG
    assert doc["annotations_json"] == '{"a.b": "c"}'
    association, stored = content.get_manifest(services, repo, "latest")
    assert stored == raw and association["digest"] == manifest.digest
    assert content.get_manifest(services, repo["_id"], manifest.digest)[1] == raw
    assert content.tag_names(services.db, repo["_id"]) == ["latest"]


def test_store_manifest_refuses_missing_blobs_before_writing(services, repo):
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": descriptor(oci.OCI_CONFIG, b"{}"), "layers": []})
    with pytest.raises(ManifestBlobUnknown):
        content.store_manifest(services, repo, raw, None, "latest")
    assert services.db.manifests.count_documents({}) == 0
    assert not services.storage.exists(sha256(raw))
    with pytest.raises(ManifestUnknown):
        content.get_manifest(services, repo, "latest")


def test_request_publish_reuses_a_waiting_task(services, repo):
    from pulp_registry import tasks

    waiting = tasks.create_task(services.db, "publish", [tasks.repository_resource(repo["_id"])],
                                {"repo_id": repo["_id"]})
    assert content.request_publish(services, repo["_id"])["_id"] == waiting["_id"]
    assert services.db.tasks.count_documents({}) == 1
