"""Helpers of the REST API tests: images stored through the real content functions, spawned tasks."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pulp_registry import content, oci


@dataclass
class StoredImage:
    digest: str
    size: int  # manifest bytes + config + layers
    manifest_size: int
    blob_sizes: dict[str, int]


def store_image(services: Any, repo: dict[str, Any], reference: str | None, layer: bytes,
                media_type: str = oci.DOCKER_MANIFEST, architecture: str = "amd64") -> StoredImage:
    """Store a one-layer image in ``repo`` as a push would: blobs first, then the manifest by tag (or digest: None)."""
    config = json.dumps({"architecture": architecture, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = content.store_blob(services, repo, config)
    layer_digest = content.store_blob(services, repo, layer)
    docker = media_type == oci.DOCKER_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": oci.DOCKER_CONFIG if docker else oci.OCI_CONFIG,
                   "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": oci.DOCKER_LAYER if docker else oci.OCI_LAYER_GZIP,
                    "size": len(layer), "digest": layer_digest}],
    }
    raw = json.dumps(manifest).encode()
    stored = content.store_manifest(services, repo, raw, media_type, reference or oci.compute_digest(raw))
    return StoredImage(stored.digest, len(raw) + len(config) + len(layer), len(raw),
                       {config_digest: len(config), layer_digest: len(layer)})


def store_index(services: Any, repo: dict[str, Any], reference: str,
                children: list[tuple[StoredImage, str]]) -> tuple[str, int]:
    """Store an OCI index of ``children`` (image, architecture); return its digest and raw size."""
    index = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_INDEX,
        "manifests": [{"mediaType": oci.OCI_MANIFEST, "digest": image.digest, "size": image.manifest_size,
                       "platform": {"os": "linux", "architecture": architecture}}
                      for image, architecture in children],
    }
    raw = json.dumps(index).encode()
    stored = content.store_manifest(services, repo, raw, oci.OCI_INDEX, reference)
    return stored.digest, len(raw)


def wait_task(client, auth, call_report: dict[str, Any]) -> dict[str, Any]:
    """The (single) task a 202 call report names, as the API shows it now (eager Celery ran it already)."""
    [spawned] = call_report["spawned_tasks"]
    response = client.get(spawned["_href"], headers=auth)
    assert response.status_code == 200
    return response.get_json()
