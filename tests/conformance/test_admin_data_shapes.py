"""The newer runner's (``run.go``) data shapes and error cases on the admin ``/v2/``."""
from __future__ import annotations

import base64
from typing import Any

import pytest

from pulp_registry import oci
from tests.conformance.suite import (EMPTY_JSON, LAYER, NONEXISTENT_MANIFEST, Registry, code, desc,
                                     digest_of, pretty, random_blob)


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
