"""Publish: the one writer of the published tree Crane serves (docs/published-format.md).

A publish writes a complete new version of one repository beside the live one
and switches to it with one atomic rename of the ``current`` symlink, so Crane
sees the old version or the new one, never a mix. Blobs are hard links to the
content store (copies across filesystems) and are never removed here: a pull
under way keeps its bytes.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

from pulp_registry import published_format as fmt
from pulp_registry.db import Collections, isoformat, utcnow
from pulp_registry.storage import fsync_dir

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]

#: ``os.link`` failures that mean "cannot link here", so the bytes are copied instead.
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}
_QUERY_BATCH = 1000


class PublishError(Exception):
    """The repository cannot be published as it is (missing, or content missing from storage)."""


# --- small atomic file helpers ------------------------------------------------------

def _random() -> str:
    return uuid.uuid4().hex[:12]


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file beside ``path`` (a dot name readers ignore), fsync, rename."""
    tmp = path.parent / f".{path.name}.{_random()}.tmp"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def _copy_stream(source: BinaryIO, tmp: Path) -> None:
    with source, open(tmp, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(tmp, 0o644)


def _link_content(storage: Any, digest: str, target: Path) -> bool:
    """Put the stored bytes of ``digest`` at ``target``; False if storage lacks them."""
    if target.exists():
        return True
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{_random()}.tmp"
    try:
        source_path = storage.local_path(digest)
        linked = False
        if source_path is not None:
            try:
                os.link(source_path, tmp)
                linked = True
            except FileNotFoundError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_LINK_ERRNOS:
                    raise
        if not linked:
            if not storage.exists(digest):
                return False
            _copy_stream(storage.open(digest), tmp)
        os.replace(tmp, target)
        return True
    finally:
        tmp.unlink(missing_ok=True)


# --- what the repository holds ---------------------------------------------------------

def _batched(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _QUERY_BATCH):
        yield values[start:start + _QUERY_BATCH]


def _manifest_entry(association: dict[str, Any], manifest: dict[str, Any] | None) -> dict[str, Any]:
    manifest = manifest or {}
    annotations_json = manifest.get("annotations_json")
    children = manifest.get("children") or []
    return {
        "media_type": manifest.get("media_type") or association.get("media_type"),
        "size": manifest.get("size", association.get("size")),
        "artifact_type": manifest.get("artifact_type"),
        "config_media_type": manifest.get("config_media_type"),
        "subject": manifest.get("subject"),
        "annotations": json.loads(annotations_json) if annotations_json else None,
        "platforms": [{"digest": child["digest"], "platform": child.get("platform")} for child in children]
        if children else None,
    }


def repository_document(db: Collections, repo: dict[str, Any], published: datetime) -> tuple[dict[str, Any], set[str]]:
    """``repository.json`` of ``repo`` and the blob digests it must list but the repo did not associate."""
    repo_id = repo["_id"]
    associations = {a["digest"]: a for a in db.repo_manifests.find({"repo_id": repo_id})}
    manifest_docs: dict[str, dict[str, Any]] = {}
    for batch in _batched(sorted(associations)):
        for manifest in db.manifests.find({"_id": {"$in": batch}}):
            manifest_docs[manifest["_id"]] = manifest
    manifests = {digest: _manifest_entry(associations[digest], manifest_docs.get(digest))
                 for digest in sorted(associations)}

    blobs = {a["digest"]: a.get("size") for a in db.repo_blobs.find({"repo_id": repo_id})}
    # A manifest's config and layers are pullable through it even if an association is missing.
    referenced = {digest for manifest in manifest_docs.values() for digest in manifest.get("blob_digests") or []}
    unassociated = referenced - blobs.keys()
    for batch in _batched(sorted(unassociated)):
        for blob in db.blobs.find({"_id": {"$in": batch}}):
            blobs[blob["_id"]] = blob.get("size")

    tags = {tag["name"]: tag["manifest_digest"] for tag in db.tags.find({"repo_id": repo_id})}
    document = {
        "format": fmt.FORMAT_VERSION,
        "name": repo["name"],
        "repo_id": repo_id,
        "protected": bool(repo.get("protected", False)),
        "published": isoformat(published),
        "tags": dict(sorted(tags.items())),
        "manifests": manifests,
        "blobs": dict(sorted(blobs.items())),
    }
    return document, unassociated


# --- publish and unpublish -------------------------------------------------------------

def _new_version(now: datetime) -> str:
    """Sorts by time; the random suffix keeps two publishes in one microsecond apart."""
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + _random()[:8]


def _ensure_format_file(root: Path) -> None:
    format_file = root / fmt.FORMAT_FILE
    if not format_file.exists():
        _write_atomic(format_file, fmt.FORMAT_TEXT.encode())


def bump_generation(root: Path) -> str:
    """Tell Crane something changed: replace ``generation`` with a new token."""
    token = uuid.uuid4().hex
    _write_atomic(root / fmt.GENERATION_FILE, (token + "\n").encode())
    return token


def _switch_current(repo_dir: Path, version: str) -> str | None:
    """Point ``current`` at ``versions/<version>`` in one rename; return the version it pointed at."""
    current = repo_dir / fmt.CURRENT_LINK
    try:
        previous = Path(os.readlink(current)).name
    except (FileNotFoundError, OSError):
        previous = None
    tmp_link = repo_dir / f"{fmt.CURRENT_LINK}.{_random()}"
    os.symlink(f"{fmt.VERSIONS_DIR}/{version}", tmp_link)
    try:
        os.replace(tmp_link, current)
    finally:
        if tmp_link.is_symlink():
            tmp_link.unlink()
    fsync_dir(repo_dir)
    return previous


def _remove_old_versions(repo_dir: Path, keep: set[str]) -> None:
    versions_dir = repo_dir / fmt.VERSIONS_DIR
    for entry in versions_dir.iterdir():
        if entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def publish_repository(services: Any, repo_id: str, progress: Progress | None = None) -> dict[str, Any]:
    """Write a new version of repository ``repo_id`` into the published tree and switch to it."""
    report = progress or (lambda _report: None)
    db: Collections = services.db
    repo = db.repositories.find_one({"_id": repo_id})
    if repo is None:
        raise PublishError(f"repository {repo_id!r} does not exist")
    root = Path(services.settings.published_dir)
    root.mkdir(parents=True, exist_ok=True)
    _ensure_format_file(root)

    now = utcnow()
    document, unassociated = repository_document(db, repo, now)

    manifest_digests = list(document["manifests"])
    for done, digest in enumerate(manifest_digests, 1):
        if not _link_content(services.storage, digest, fmt.blob_path(root, digest)):
            raise PublishError(f"manifest {digest} of repository {repo_id!r} is missing from content storage")
        report({"step": "manifests", "done": done, "total": len(manifest_digests)})
    report({"step": "manifests", "done": len(manifest_digests), "total": len(manifest_digests)})

    blob_digests = list(document["blobs"])
    for done, digest in enumerate(blob_digests, 1):
        if not _link_content(services.storage, digest, fmt.blob_path(root, digest)):
            if digest not in unassociated:
                raise PublishError(f"blob {digest} of repository {repo_id!r} is missing from content storage")
            log.warning("blob %s named by a manifest of %s is not stored; not published", digest, repo_id)
            del document["blobs"][digest]
        report({"step": "blobs", "done": done, "total": len(blob_digests)})
    report({"step": "blobs", "done": len(blob_digests), "total": len(blob_digests)})

    repo_dir = fmt.repository_dir(root, repo["name"])
    version = _new_version(now)
    version_dir = repo_dir / fmt.VERSIONS_DIR / version
    version_dir.mkdir(parents=True)
    _write_atomic(version_dir / fmt.REPOSITORY_JSON, json.dumps(document, indent=1, sort_keys=False).encode())
    fsync_dir(version_dir.parent)

    previous = _switch_current(repo_dir, version)
    bump_generation(root)
    _remove_old_versions(repo_dir, {version} | ({previous} if previous else set()))
    db.repositories.update_one({"_id": repo_id}, {"$set": {"last_published": now}})
    report({"step": "switch", "done": 1, "total": 1})

    result = {"tags": len(document["tags"]), "manifests": len(document["manifests"]),
              "blobs": len(document["blobs"]), "version": version}
    log.info("published %s (%s): %s", repo["name"], repo_id, result)
    return result


def unpublish_repository(settings: Any, name: str) -> None:
    """Remove repository ``name`` from the published tree: rename it away, bump generation, delete."""
    root = Path(settings.published_dir)
    repo_dir = fmt.repository_dir(root, name)
    if not repo_dir.exists() and not repo_dir.is_symlink():
        return
    trash = root / f".trash-{_random()}"
    os.rename(repo_dir, trash)
    fsync_dir(repo_dir.parent)
    bump_generation(root)
    shutil.rmtree(trash, ignore_errors=True)
