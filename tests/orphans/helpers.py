"""Helpers of the orphan clean-up tests: make content old, list what is stored."""
from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pulp_registry import published_format as fmt
from pulp_registry.db import utcnow

HOUR = 3600


def age(services: Any, digest: str, seconds: float = 2 * HOUR) -> None:
    """Make a unit look ``seconds`` old: its documents and its files (content store and published tree)."""
    created = utcnow() - timedelta(seconds=seconds)
    for collection in (services.db.blobs, services.db.manifests):
        collection.update_one({"_id": digest}, {"$set": {"created": created}})
    when = time.time() - seconds
    for path in (services.storage.path(digest), published_path(services, digest)):
        if path.exists():
            os.utime(path, (when, when))


def age_everything(services: Any, seconds: float = 2 * HOUR) -> None:
    digests = [doc["_id"] for doc in services.db.blobs.find({}, {"_id": 1})]
    digests += [doc["_id"] for doc in services.db.manifests.find({}, {"_id": 1})]
    for digest in digests:
        age(services, digest, seconds)


def age_path(path: Path, seconds: float = 2 * HOUR) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when), follow_symlinks=False)


def published_path(services: Any, digest: str) -> Path:
    return fmt.blob_path(Path(services.settings.published_dir), digest)


def stored(services: Any, digest: str) -> bool:
    """The unit is whole: a document and its file."""
    has_document = (services.db.blobs.find_one({"_id": digest}) is not None
                    or services.db.manifests.find_one({"_id": digest}) is not None)
    return has_document and services.storage.exists(digest)


def gone(services: Any, digest: str) -> bool:
    """Nothing of the unit is left: no document, no file in content storage nor in the published tree."""
    return (services.db.blobs.find_one({"_id": digest}) is None
            and services.db.manifests.find_one({"_id": digest}) is None
            and not services.storage.exists(digest) and not published_path(services, digest).exists())


def no_progress(_report: dict[str, Any]) -> None:
    pass
