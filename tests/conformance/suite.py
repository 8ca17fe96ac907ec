"""The OCI distribution-spec conformance suite's data and client, for the tests beside it.

The Go suite (opencontainers/distribution-spec ``conformance/``) cannot run here, so each of its
cases is written again with the Flask test client: the four workflows of the ginkgo suite
(``01_pull_test.go``, ``02_push_test.go``, ``03_discovery_test.go``, ``04_management_test.go``,
with the test data of ``setup.go``), and what the newer runner on ``main`` (``run.go``) adds.
Each test names the suite's case it stands for; status codes and headers are the ones the suite
accepts. ``test_admin_*`` run them against the admin ``/v2/`` (full mode), ``test_crane_conformance``
the pull cases against Crane (read-only mode).
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

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
