"""Small images pushed straight through the content functions (no HTTP), for publish and task tests."""
from __future__ import annotations

import json
from typing import Any

from pulp_registry import content, oci, repositories


def make_repository(services: Any, name: str, **fields: Any) -> dict[str, Any]:
    return repositories.create_repository(services.db, name, **fields)


def push_image(services: Any, repo: dict[str, Any], tag: str | None, layers: list[bytes],
               media_type: str = oci.OCI_MANIFEST, architecture: str = "amd64",
               annotations: dict[str, str] | None = None) -> tuple[str, bytes]:
    """Store config, layers and an image manifest in ``repo`` (tagged ``tag`` if given); digest and bytes."""
    config = json.dumps({"architecture": architecture, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = content.store_blob(services, repo, config)
    docker = media_type == oci.DOCKER_MANIFEST
    layer_descriptors = []
    for layer in layers:
        digest = content.store_blob(services, repo, layer)
        layer_descriptors.append({"mediaType": oci.DOCKER_LAYER if docker else oci.OCI_LAYER_GZIP,
                                  "digest": digest, "size": len(layer)})
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG,
                   "digest": config_digest, "size": len(config)},
        "layers": layer_descriptors,
    }
    if annotations:
        manifest["annotations"] = annotations
    raw = json.dumps(manifest, indent=3).encode()
    digest = oci.compute_digest(raw)
    content.store_manifest(services, repo, raw, media_type, tag or digest)
    return digest, raw


def push_index(services: Any, repo: dict[str, Any], tag: str,
               children: list[tuple[str, bytes, dict[str, str]]]) -> tuple[str, bytes]:
    """An OCI index over ``children`` (digest, raw bytes, platform) already in ``repo``."""
    index = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [{"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": len(raw), "platform": platform}
                      for digest, raw, platform in children],
    }
    raw = json.dumps(index).encode()
    content.store_manifest(services, repo, raw, oci.OCI_INDEX, tag)
    return oci.compute_digest(raw), raw
