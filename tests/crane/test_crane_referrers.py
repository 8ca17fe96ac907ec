"""Referrers (OCI distribution spec 1.1): signatures and SBOMs pushed as OCI artifacts are found by subject."""
from __future__ import annotations

import json
from typing import Any

import pytest

from pulp_registry import content, oci
from tests.crane.conftest import error_code
from tests.crane.content import Image

SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_CONFIG_TYPE = "application/vnd.example.sbom"
EMPTY_CONFIG = b"{}"


def push_artifact(services: Any, repo: dict[str, Any], subject: Image, payload: bytes, *,
                  artifact_type: str | None = None, config_media_type: str = oci.OCI_EMPTY,
                  config: bytes = EMPTY_CONFIG, layer_media_type: str = "application/octet-stream",
                  annotations: dict[str, str] | None = None) -> tuple[str, bytes]:
    """Push an OCI artifact manifest whose subject is ``subject``, untagged, as cosign/oras do."""
    config_digest = content.store_blob(services, repo, config)
    layer_digest = content.store_blob(services, repo, payload)
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": config_media_type, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": layer_media_type, "digest": layer_digest, "size": len(payload)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if annotations:
        doc["annotations"] = annotations
    raw = json.dumps(doc).encode()
    manifest = content.store_manifest(services, repo, raw, oci.OCI_MANIFEST, oci.compute_digest(raw))
    return manifest.digest, raw


@pytest.fixture
def signed(services, publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest")
    signature, signature_raw = push_artifact(
        services, repo, image, b"signature bytes", artifact_type=SIGNATURE_TYPE,
        layer_media_type="application/vnd.dev.cosign.simplesigning.v1+json",
        annotations={"dev.cosignproject.cosign/signature": "MEUCIQ..."})
    sbom, sbom_raw = push_artifact(
        services, repo, image, b'{"spdxVersion": "SPDX-2.3"}', config_media_type=SBOM_CONFIG_TYPE,
        config=b'{"format": "spdx"}', annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"})
    publisher.publish(repo)
    crane.tick()
    return {"repo": repo, "image": image, "signature": (signature, signature_raw), "sbom": (sbom, sbom_raw)}


def referrers(crane, path: str) -> tuple[Any, list[dict[str, Any]]]:
    response = crane.get(path)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == oci.OCI_INDEX
    index = json.loads(response.data)
    assert index["schemaVersion"] == 2 and index["mediaType"] == oci.OCI_INDEX
    return response, index["manifests"]


def test_referrers_list_every_manifest_whose_subject_is_the_digest(crane, signed):
    response, manifests = referrers(crane, f"/v2/my/app/referrers/{signed['image'].digest}")
    (signature, signature_raw), (sbom, sbom_raw) = signed["signature"], signed["sbom"]
    by_digest = {descriptor["digest"]: descriptor for descriptor in manifests}
    assert by_digest == {
        signature: {"mediaType": oci.OCI_MANIFEST, "digest": signature, "size": len(signature_raw),
                    "artifactType": SIGNATURE_TYPE,
                    "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ..."}},
        sbom: {"mediaType": oci.OCI_MANIFEST, "digest": sbom, "size": len(sbom_raw),
               "artifactType": SBOM_CONFIG_TYPE,      # no artifactType: the config media type stands in
               "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}},
    }
    assert "OCI-Filters-Applied" not in response.headers
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    # What the descriptors name is pullable from the same repository, byte for byte.
    assert crane.get(f"/v2/my/app/manifests/{signature}").data == signature_raw


def test_the_artifact_type_filter_keeps_that_type_and_says_so(crane, signed):
    subject = signed["image"].digest
    response, manifests = referrers(crane, f"/v2/my/app/referrers/{subject}?artifactType={SBOM_CONFIG_TYPE}")
    assert [descriptor["digest"] for descriptor in manifests] == [signed["sbom"][0]]
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    response, manifests = referrers(crane, f"/v2/my/app/referrers/{subject}?artifactType=application/x-none")
    assert manifests == [] and response.headers["OCI-Filters-Applied"] == "artifactType"


def test_a_subject_nothing_refers_to_answers_an_empty_index(crane, signed):
    for subject in (signed["signature"][0], "sha256:" + "3" * 64):
        response, manifests = referrers(crane, f"/v2/my/app/referrers/{subject}")
        assert manifests == []
    assert crane.head(f"/v2/my/app/referrers/{signed['image'].digest}").status_code == 200


@pytest.mark.parametrize("digest", ["latest", "sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64])
def test_an_invalid_digest_is_digest_invalid(crane, signed, digest):
    response = crane.get(f"/v2/my/app/referrers/{digest}")
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_an_unknown_repository_is_name_unknown(crane, signed):
    response = crane.get(f"/v2/no/such/referrers/{signed['image'].digest}")
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"


def test_referrers_in_another_repository_are_not_listed(services, publisher, crane, signed):
    other = publisher.repository("other/app")
    push_artifact(services, other, signed["image"], b"foreign signature", artifact_type=SIGNATURE_TYPE)
    publisher.publish(other)
    crane.tick()
    _, manifests = referrers(crane, f"/v2/other/app/referrers/{signed['image'].digest}")
    assert len(manifests) == 1
    _, manifests = referrers(crane, f"/v2/my/app/referrers/{signed['image'].digest}")
    assert len(manifests) == 2


def test_an_index_referrer_without_artifact_type_has_none(services, publisher, crane, signed):
    repo, image = signed["repo"], signed["image"]
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [],
           "subject": {"mediaType": image.media_type, "digest": image.digest, "size": len(image.raw)}}
    raw = json.dumps(doc).encode()
    index_digest = content.store_manifest(services, repo, raw, oci.OCI_INDEX, oci.compute_digest(raw)).digest
    publisher.publish(repo)
    crane.tick()
    _, manifests = referrers(crane, f"/v2/my/app/referrers/{image.digest}")
    by_digest = {descriptor["digest"]: descriptor for descriptor in manifests}
    assert by_digest[index_digest] == {"mediaType": oci.OCI_INDEX, "digest": index_digest, "size": len(raw)}


def test_the_index_is_built_once_per_published_version_and_follows_republishes(services, publisher, crane,
                                                                                 signed):
    image = signed["image"]
    crane.get("/v2/")                      # the first request after the tick loads the new version
    repository = crane.tree.repository("my/app")
    entries = repository.referrers[image.digest]
    assert {entry.digest for entry in entries} == {signed["signature"][0], signed["sbom"][0]}
    referrers(crane, f"/v2/my/app/referrers/{image.digest}")
    assert crane.tree.repository("my/app").referrers[image.digest] is entries   # not rebuilt by a request

    late, _ = push_artifact(services, signed["repo"], image, b"a later attestation",
                            artifact_type="application/vnd.in-toto+json")
    publisher.publish(signed["repo"])
    crane.tick()
    _, manifests = referrers(crane, f"/v2/my/app/referrers/{image.digest}")
    assert late in {descriptor["digest"] for descriptor in manifests}


def test_referrers_of_a_protected_repository_need_a_token(services, publisher, crane):
    repo = publisher.repository("secret/app", protected=True)
    image = publisher.image(repo, "latest")
    push_artifact(services, repo, image, b"sig", artifact_type=SIGNATURE_TYPE)
    publisher.publish(repo)
    crane.tick()
    response = crane.get(f"/v2/secret/app/referrers/{image.digest}")
    assert response.status_code == 401
    assert 'scope="repository:secret/app:pull"' in response.headers["WWW-Authenticate"]
