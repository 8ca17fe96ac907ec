"""Images for Crane tests, stored through the admin side's content functions and published by the real writer."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulp_registry import content, oci, repositories
from pulp_registry.publish import publish_repository, unpublish_repository


@dataclass(frozen=True)
class Image:
    digest: str
    raw: bytes
    media_type: str
    config_digest: str | None = None
    layers: tuple[tuple[str, bytes], ...] = ()


class Publisher:
    """Creates repositories and images in the admin database and publishes them."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def repository(self, name: str, protected: bool = False) -> dict[str, Any]:
        return repositories.create_repository(self.services.db, name, protected=protected)

    def image(self, repo: dict[str, Any], tag: str | None, layers: list[bytes] | None = None,
              media_type: str = oci.OCI_MANIFEST, architecture: str = "amd64") -> Image:
        layers = layers if layers is not None else [f"layer of {repo['name']}:{tag} {architecture}".encode()]
        docker = media_type == oci.DOCKER_MANIFEST
        config = json.dumps({"architecture": architecture, "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        config_digest = content.store_blob(self.services, repo, config)
        descriptors, stored = [], []
        for layer in layers:
            digest = content.store_blob(self.services, repo, layer)
            stored.append((digest, layer))
            descriptors.append({"mediaType": oci.DOCKER_LAYER if docker else oci.OCI_LAYER_GZIP,
                                "digest": digest, "size": len(layer)})
        manifest = {"schemaVersion": 2, "mediaType": media_type,
                    "config": {"mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG,
                               "digest": config_digest, "size": len(config)},
                    "layers": descriptors}
        raw = json.dumps(manifest, indent=2).encode()
        parsed = content.store_manifest(self.services, repo, raw, media_type, tag or oci.compute_digest(raw))
        return Image(parsed.digest, raw, media_type, config_digest, tuple(stored))

    def index(self, repo: dict[str, Any], tag: str, children: list[tuple[Image, str]],
              media_type: str = oci.OCI_INDEX) -> Image:
        """A list or index over ``children`` (image, architecture) already stored in ``repo``."""
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "manifests": [{"mediaType": child.media_type, "digest": child.digest, "size": len(child.raw),
                              "platform": {"architecture": architecture, "os": "linux"}}
                             for child, architecture in children]}
        raw = json.dumps(doc).encode()
        parsed = content.store_manifest(self.services, repo, raw, media_type, tag)
        return Image(parsed.digest, raw, media_type)

    def untag(self, repo: dict[str, Any], tag: str) -> None:
        self.services.db.tags.delete_one({"repo_id": repo["_id"], "name": tag})

    def publish(self, repo: dict[str, Any]) -> dict[str, Any]:
        return publish_repository(self.services, repo["_id"])

    def unpublish(self, repo: dict[str, Any]) -> None:
        unpublish_repository(self.services.settings, repo["name"])

    @property
    def published_dir(self) -> Path:
        return Path(self.services.settings.published_dir)
