"""Crane over a published tree written by the real publish code (mongomock + filesystem storage).

``crane`` runs the app in-process with Flask's test client and a clock the test
moves, so "a new publish is picked up once the poll interval has passed" is
checked without sleeping.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crane.app import create_app
from crane.config import CraneSettings
from crane.published import PublishedTree
from tests.crane.content import Publisher
from tests.crane.scale_tree import write_published_tree

ALL_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class CraneUnderTest:
    """A Crane app on ``data_dir`` whose poll clock only moves when ``tick`` is called."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.now = 0.0
        self.settings = CraneSettings(data_dir=str(data_dir), poll_interval=1.0, **settings)
        self.tree = PublishedTree(self.settings.data_dir, self.settings.poll_interval,
                                  self.settings.manifest_cache_size, self.settings.repository_cache_mib,
                                  clock=lambda: self.now)
        self.app = create_app(self.settings, self.tree)
        self.client = self.app.test_client()

    def tick(self) -> None:
        """Let the poll interval pass: the next request looks for new publishes."""
        self.now += self.settings.poll_interval

    def get(self, path: str, accept: str | None = ALL_MANIFEST_TYPES, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if accept is not None:
            headers.setdefault("Accept", accept)
        return self.client.get(path, headers=headers, **kwargs)

    def head(self, path: str, accept: str | None = ALL_MANIFEST_TYPES, **kwargs: Any):
        headers = dict(kwargs.pop("headers", {}))
        if accept is not None:
            headers.setdefault("Accept", accept)
        return self.client.head(path, headers=headers, **kwargs)


def error_code(response) -> str:
    """The first registry error code of a JSON error response."""
    return json.loads(response.data)["errors"][0]["code"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree written by ``tests/crane/scale_tree.py``: 50 repositories of 3 tags; every tenth (0, 10, ...)
    protected."""
    root = tmp_path / "published"
    write_published_tree(root, 50, 3, manifest_blobs=True)
    return root


@pytest.fixture
def publisher(services) -> Publisher:
    return Publisher(services)


@pytest.fixture
def make_crane(publisher):
    def make(**settings: Any) -> CraneUnderTest:
        return CraneUnderTest(publisher.published_dir, **settings)
    return make


@pytest.fixture
def crane(make_crane) -> CraneUnderTest:
    """Crane started before anything is published; ``crane.tick()`` after publishing."""
    return make_crane()


@pytest.fixture
def token_auth(tmp_path) -> dict[str, str]:
    """Settings that turn token auth on: a fresh issuer's public key, its issuer and service names."""
    key_file = tmp_path / "token-issuer.pem"
    key_file.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return {"token_public_key": str(key_file), "token_issuer": "test-issuer", "token_service": "test-registry"}
