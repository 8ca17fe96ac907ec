"""Helpers of the lifecycle tests: images stored through the content functions, Crane on the published tree."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulp_registry import content, oci, tasks
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Image, Publisher

COPY = "/pulp/api/v2/actions/copy/"
REPOS = "/pulp/api/v2/repositories/"
SIGNATURE_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"


def push_referrer(services: Any, repo: dict[str, Any], subject: Image, payload: bytes) -> str:
    """An untagged OCI artifact (a signature) whose subject is ``subject``, as cosign pushes it; its digest."""
    return push_referrer_image(services, repo, subject, payload).digest


def push_referrer_image(services: Any, repo: dict[str, Any], subject: Image, payload: bytes) -> Image:
    """Like ``push_referrer``, answering the artifact (to be the subject of another one)."""
    config_digest = content.store_blob(services, repo, b"{}")
    layer_digest = content.store_blob(services, repo, payload)
    raw = json.dumps({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "artifactType": SIGNATURE_TYPE,
        "config": {"mediaType": oci.OCI_EMPTY, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest, "size": len(payload)}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.raw)},
    }).encode()
    stored = content.store_manifest(services, repo, raw, oci.OCI_MANIFEST, oci.compute_digest(raw))
    return Image(stored.digest, raw, oci.OCI_MANIFEST)


def held(services: Any, repo_id: str) -> dict[str, Any]:
    """What a repository holds: tags, manifest digests and blob digests."""
    db = services.db
    return {"tags": {tag["name"]: tag["manifest_digest"] for tag in db.tags.find({"repo_id": repo_id})},
            "manifests": {a["digest"] for a in db.repo_manifests.find({"repo_id": repo_id})},
            "blobs": {a["digest"] for a in db.repo_blobs.find({"repo_id": repo_id})}}


def content_file_count(services: Any) -> int:
    return sum(1 for path in (Path(services.settings.storage_path)).rglob("*") if path.is_file())


def run_waiting_tasks(services: Any) -> list[dict[str, Any]]:
    """Run the tasks left waiting (eager Celery may leave a publish spawned by a task that holds its lock)."""
    ran = []
    for task in services.db.tasks.find({"state": "waiting"}).sort("created", 1):
        celery_task = services.celery.tasks[tasks.TASK_NAMES[task["task_type"]]]
        celery_task.apply(kwargs={"task_id": task["_id"], **task["kwargs"]})
        ran.append(services.db.tasks.find_one({"_id": task["_id"]}))
    return ran


def crane_on(services: Any) -> CraneUnderTest:
    """A Crane app on the admin side's published tree."""
    return CraneUnderTest(Publisher(services).published_dir)
