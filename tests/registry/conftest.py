"""Helpers for the push endpoint tests: blobs pushed over the protocol, manifests built by hand."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pulp_registry import oci


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    """Compact JSON, as many clients send it (the registry must keep these exact bytes)."""
    return json.dumps(doc, separators=(",", ":")).encode()


class Pusher:
    """Talks the push protocol through the Flask test client with the admin's credentials."""

    def __init__(self, client: Any, auth: dict[str, str]) -> None:
        self.client = client
        self.auth = auth

    def blob(self, name: str, data: bytes) -> str:
        """POST a session, PUT the whole blob; assert it was kept."""
        start = self.client.post(f"/v2/{name}/blobs/uploads/", headers=self.auth)
        assert start.status_code == 202, start.get_data(as_text=True)
        digest = sha256(data)
        done = self.client.put(f"{start.headers['Location']}?digest={digest}", data=data,
                               headers={**self.auth, "Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.get_data(as_text=True)
        return digest

    def manifest(self, name: str, reference: str, raw: bytes, media_type: str | None) -> Any:
        headers = dict(self.auth)
        if media_type:
            headers["Content-Type"] = media_type
        return self.client.put(f"/v2/{name}/manifests/{reference}", data=raw, headers=headers)

    def image(self, name: str, media_type: str = oci.OCI_MANIFEST, seed: bytes = b"",
              tag: str | None = None) -> tuple[str, bytes]:
        """Push a small one-layer image; return its manifest digest and bytes."""
        docker = media_type == oci.DOCKER_MANIFEST
        config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed.hex()}).encode()
        layer = b"layer-" + seed + media_type.encode()
        self.blob(name, config)
        self.blob(name, layer)
        raw = manifest_bytes({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG, config),
            "layers": [descriptor(oci.DOCKER_LAYER if docker else oci.OCI_LAYER_GZIP, layer)],
        })
        response = self.manifest(name, tag or sha256(raw), raw, media_type)
        assert response.status_code == 201, response.get_data(as_text=True)
        return sha256(raw), raw


@pytest.fixture
def push(client, auth) -> Pusher:
    return Pusher(client, auth)


def content_files(services: Any) -> list[Path]:
    """Every blob or manifest file in content storage."""
    root = Path(services.settings.storage_path) / "blobs"
    return sorted(path for path in root.rglob("*") if path.is_file())


def upload_files(services: Any) -> list[Path]:
    return sorted(path for path in (Path(services.settings.storage_path) / "uploads").iterdir())


def database_counts(services: Any) -> dict[str, int]:
    db = services.db
    return {name: getattr(db, name).count_documents({}) for name in
            ("repositories", "blobs", "manifests", "repo_blobs", "repo_manifests", "tags", "uploads")}


class Snapshot:
    """What the registry holds (documents and files), to assert a refused request changed nothing."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self.counts = database_counts(services)
        self.files = content_files(services)
        self.tasks = services.db.tasks.count_documents({})

    def assert_unchanged(self) -> None:
        assert database_counts(self.services) == self.counts
        assert content_files(self.services) == self.files
        assert self.services.db.tasks.count_documents({}) == self.tasks


@pytest.fixture
def snapshot(services):
    return lambda: Snapshot(services)
