"""Names, tags, digests and manifest parsing as the registry protocol defines them."""
from __future__ import annotations

import hashlib
import json

import pytest

from pulp_registry import oci
from pulp_registry.registry_errors import DigestInvalid, ManifestInvalid, NameInvalid, TagInvalid

CONFIG_DIGEST = "sha256:" + "a" * 64
LAYER_DIGEST = "sha256:" + "b" * 64
CHILD_DIGEST = "sha256:" + "c" * 64


def raw(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def image_manifest(media_type: str | None, config_type: str, layer_type: str) -> dict:
    doc = {"schemaVersion": 2,
           "config": {"mediaType": config_type, "digest": CONFIG_DIGEST, "size": 7},
           "layers": [{"mediaType": layer_type, "digest": LAYER_DIGEST, "size": 42}]}
    if media_type:
        doc["mediaType"] = media_type
    return doc


def index(media_type: str | None, child_type: str) -> dict:
    doc = {"schemaVersion": 2, "manifests": [
        {"mediaType": child_type, "digest": CHILD_DIGEST, "size": 500,
         "platform": {"architecture": "arm64", "os": "linux"}}]}
    if media_type:
        doc["mediaType"] = media_type
    return doc


@pytest.mark.parametrize("name", ["a", "library/busybox", "my-app", "my/app", "a.b_c__d--e/f0",
                                  "x" * 255, "0/1/2/3"])
def test_valid_repository_names_are_accepted(name):
    assert oci.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "My/App", "a//b", "/a", "a/", "-a", "a-", "a..b", "a___b",
                                  "a b", "a:b", "x" * 256, "ä", "a/.b"])
def test_invalid_repository_names_are_refused_with_name_invalid(name):
    with pytest.raises(NameInvalid) as error:
        oci.validate_name(name)
    assert error.value.status == 400 and error.value.to_json()["errors"][0]["code"] == "NAME_INVALID"


@pytest.mark.parametrize("tag", ["latest", "v1.0", "1", "_x", "A-b.c_d", "a" * 128])
def test_valid_tags_are_accepted(tag):
    assert oci.validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a" * 129, "v1:2", "a/b", "tag with space", "é"])
def test_invalid_tags_are_refused_with_tag_invalid(tag):
    with pytest.raises(TagInvalid):
        oci.validate_tag(tag)


@pytest.mark.parametrize("digest", ["sha256:" + "0" * 64, "sha512:" + "f" * 128])
def test_valid_digests_are_accepted(digest):
    assert oci.validate_digest(digest) == digest
    assert oci.is_digest(digest)


@pytest.mark.parametrize("digest", ["sha256:" + "A" * 64, "sha256:" + "0" * 63, "sha256:" + "0" * 65,
                                    "md5:" + "0" * 32, "sha256-" + "0" * 64, "0" * 64, "sha256:", ""])
def test_invalid_digests_are_refused_with_digest_invalid(digest):
    with pytest.raises(DigestInvalid):
        oci.validate_digest(digest)
    assert not oci.is_digest(digest)


def test_reference_is_a_tag_or_a_digest():
    assert oci.validate_reference("v1") == "v1"
    assert oci.validate_reference(CONFIG_DIGEST) == CONFIG_DIGEST
    with pytest.raises(DigestInvalid):
        oci.validate_reference("sha256:short")


def test_digester_hashes_a_stream_like_hashlib():
    digester = oci.Digester()
    for chunk in (b"hello ", b"", b"world"):
        digester.update(chunk)
    assert digester.digest == "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    assert digester.size == 11
    assert oci.compute_digest(b"x", "sha512") == "sha512:" + hashlib.sha512(b"x").hexdigest()
    with pytest.raises(DigestInvalid):
        oci.Digester("md5")


@pytest.mark.parametrize("media_type,config_type,layer_type", [
    (oci.DOCKER_MANIFEST, oci.DOCKER_CONFIG, oci.DOCKER_LAYER),
    (oci.OCI_MANIFEST, oci.OCI_CONFIG, oci.OCI_LAYER_GZIP),
])
def test_image_manifests_are_parsed_with_their_blobs(media_type, config_type, layer_type):
    data = raw(image_manifest(media_type, config_type, layer_type))
    manifest = oci.parse_manifest(data, media_type)
    assert manifest.media_type == media_type
    assert manifest.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert manifest.size == len(data)
    assert manifest.blob_digests == [CONFIG_DIGEST, LAYER_DIGEST]
    assert not manifest.is_list and manifest.child_digests == []


@pytest.mark.parametrize("media_type,child_type", [
    (oci.DOCKER_MANIFEST_LIST, oci.DOCKER_MANIFEST),
    (oci.OCI_INDEX, oci.OCI_MANIFEST),
])
def test_lists_and_indexes_are_parsed_with_their_children(media_type, child_type):
    data = raw(index(media_type, child_type))
    manifest = oci.parse_manifest(data, media_type)
    assert manifest.media_type == media_type and manifest.is_list
    assert manifest.child_digests == [CHILD_DIGEST]
    assert manifest.manifests[0].platform == {"architecture": "arm64", "os": "linux"}
    assert manifest.blob_digests == []


def test_manifest_digest_is_of_the_bytes_as_received():
    pretty = json.dumps(image_manifest(oci.OCI_MANIFEST, oci.OCI_CONFIG, oci.OCI_LAYER), indent=3).encode()
    assert oci.parse_manifest(pretty).digest == "sha256:" + hashlib.sha256(pretty).hexdigest()


def test_oci_media_type_may_come_from_content_type_or_shape():
    without_type = raw(image_manifest(None, oci.OCI_CONFIG, oci.OCI_LAYER_GZIP))
    assert oci.parse_manifest(without_type, oci.OCI_MANIFEST).media_type == oci.OCI_MANIFEST
    assert oci.parse_manifest(without_type, None).media_type == oci.OCI_MANIFEST
    assert oci.parse_manifest(raw(index(None, oci.OCI_MANIFEST))).media_type == oci.OCI_INDEX


@pytest.mark.parametrize("media_type, layer_type", [
    (oci.DOCKER_MANIFEST, oci.DOCKER_FOREIGN_LAYER),
    (oci.OCI_MANIFEST, "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
])
def test_foreign_layers_are_not_required_blobs(media_type, layer_type):
    doc = image_manifest(media_type, oci.DOCKER_CONFIG, layer_type)
    assert oci.parse_manifest(raw(doc)).blob_digests == [CONFIG_DIGEST]


@pytest.mark.parametrize("content_type", [oci.DOCKER_SCHEMA1_MANIFEST, oci.DOCKER_SCHEMA1_SIGNED])
def test_schema1_manifests_are_refused(content_type):
    schema1 = raw({"schemaVersion": 1, "name": "a", "tag": "v1", "fsLayers": [], "history": []})
    with pytest.raises(ManifestInvalid, match="schema 1"):
        oci.parse_manifest(schema1, content_type)
    with pytest.raises(ManifestInvalid, match="schema 1"):
        oci.parse_manifest(schema1)


def test_media_type_that_contradicts_content_type_is_refused():
    data = raw(image_manifest(oci.DOCKER_MANIFEST, oci.DOCKER_CONFIG, oci.DOCKER_LAYER))
    with pytest.raises(ManifestInvalid, match="does not match Content-Type"):
        oci.parse_manifest(data, oci.OCI_MANIFEST)


@pytest.mark.parametrize("data,message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (raw({"schemaVersion": 2, "mediaType": "application/vnd.example+json", "config": {}}),
     "unsupported manifest media type"),
    (raw({"schemaVersion": 3, "mediaType": oci.OCI_MANIFEST, "config": {}}), "schemaVersion"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST}), "config: required"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_INDEX}), "manifests: required"),
    (raw({"schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
          "config": {"mediaType": oci.DOCKER_CONFIG, "digest": CONFIG_DIGEST, "size": 1}, "layers": []}),
     "at least one layer"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
          "config": {"mediaType": oci.OCI_CONFIG, "digest": "sha256:nothex", "size": 1}}), "config.digest"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
          "config": {"mediaType": oci.OCI_CONFIG, "digest": CONFIG_DIGEST, "size": -1}}), "config.size"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
          "config": {"mediaType": oci.OCI_CONFIG, "digest": CONFIG_DIGEST, "size": 1}, "layers": {}}),
     "layers: expected a list"),
    (raw({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
          "config": {"mediaType": oci.OCI_CONFIG, "digest": CONFIG_DIGEST, "size": 1},
          "layers": [{"digest": LAYER_DIGEST, "size": 1}]}), r"layers\[0\].mediaType"),
])
def test_malformed_manifests_are_refused_saying_what_is_wrong(data, message):
    with pytest.raises(ManifestInvalid, match=message) as error:
        oci.parse_manifest(data)
    assert error.value.to_json()["errors"][0]["code"] == "MANIFEST_INVALID"


def test_accepted_media_types_split_accept_headers():
    headers = [f"{oci.OCI_MANIFEST}, {oci.DOCKER_MANIFEST};q=0.9", oci.OCI_INDEX]
    assert oci.accepted_media_types(headers) == {oci.OCI_MANIFEST, oci.DOCKER_MANIFEST, oci.OCI_INDEX}
