"""Publish: the one writer of the published tree Crane serves (docs/published-format.md).

A publish writes a complete new version of one repository beside the live one
and switches to it with one atomic rename of the ``current`` symlink, so Crane
sees the old version or the new one, never a mix; then the journal tells every
Crane (``publish_switch``). Blobs are hard links to the content store (copies
across filesystems) and are never removed here: a pull under way keeps its bytes.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterable

from pulp_registry import history, publish_switch, published_format as fmt
from pulp_registry.db import Collections, isoformat, utcnow
from pulp_registry.durable import fsync_dir, make_dirs, write_atomic
from pulp_registry.published_tags import write_tag_documents
from pulp_registry.tasks import Progress

log = logging.getLogger(__name__)


#: ``os.link`` failures that mean "cannot link here", so the bytes are copied instead.
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}
_QUERY_BATCH = 1000


class PublishError(Exception):
    """The repository cannot be published as it is (missing, or content missing from storage)."""


# --- small atomic file helpers ------------------------------------------------------

def _random() -> str:
    return uuid.uuid4().hex[:12]


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
    if not target.parent.is_dir():
        make_dirs(target.parent)
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


def _child_platform(child: dict[str, Any]) -> Any:
    """The platform of a list's child as ``repository.json`` shows it, from its ``manifests`` document."""
    from pulp_registry.content import child_platform

    return child_platform(child)


def _manifest_entry(association: dict[str, Any], manifest: dict[str, Any] | None,
                    held: Any = ()) -> dict[str, Any]:
    """A ``manifests`` entry; a list synced for some platforms only (``content.PARTIAL``) lists
    the children the repository holds (``held``), as they are all Crane can serve."""
    from pulp_registry.content import PARTIAL

    manifest = manifest or {}
    annotations_json = manifest.get("annotations_json")
    children = manifest.get("children") or []
    if association.get(PARTIAL):
        children = [child for child in children if child["digest"] in held]
    entry = {
        "media_type": manifest.get("media_type") or association.get("media_type"),
        "size": manifest.get("size", association.get("size")),
        "artifact_type": manifest.get("artifact_type"),
        "config_media_type": manifest.get("config_media_type"),
        "subject": manifest.get("subject"),
        "annotations": json.loads(annotations_json) if annotations_json else None,
        "platforms": [{"digest": child["digest"], "platform": _child_platform(child)} for child in children]
        if children else None,
    }
    return {key: value for key, value in entry.items() if value is not None}   # absent means null


def _inline_manifests(root: Path, document: dict[str, Any]) -> None:
    """Small manifests travel in ``repository.json`` (``content``): Crane serves a repository it has
    not loaded yet with one read instead of two (a random spread of pulls over many repositories)."""
    for digest, entry in document["manifests"].items():
        if int(entry.get("size") or 0) <= fmt.INLINE_MANIFEST_MAX:
            try:
                entry["content"] = fmt.blob_path(root, digest).read_bytes().decode()
            except UnicodeDecodeError:
                pass   # not UTF-8 JSON: served from blobs/ only


def _find_by_id(collection: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for batch in _batched(sorted(ids)):
        for document in collection.find({"_id": {"$in": batch}}):
            found[document["_id"]] = document
    return found


@dataclass
class RepositoryContent:
    """What a publish read: the document to write and what it needs to check and link it."""

    document: dict[str, Any]
    #: Manifest digest -> the config and layer digests it needs (foreign layers are not pushed, not listed).
    manifest_blobs: dict[str, list[str]]
    #: Blobs listed because a manifest needs them although the repository has no association for them.
    unassociated: set[str] = field(default_factory=set)


def read_repository(db: Collections, repo: dict[str, Any], published: datetime) -> RepositoryContent:
    """Read ``repo`` so that what is read is whole, however pushes race the reading.

    A push writes blobs and their associations, then the manifest (a list's
    children before the list), then the tag. So tags are read first, then the
    manifests, then the blobs: whatever a tag names was associated before the
    tag was written, and so before the manifests were read; likewise for the
    children and blobs of every manifest read. A manifest or blob that is needed
    but has no association (a repository changed behind our back) is taken from
    its unit, as long as the unit exists; ``check_document`` says what is still missing.
    """
    from pulp_registry.content import PARTIAL

    repo_id = repo["_id"]
    tags = {tag["name"]: tag["manifest_digest"] for tag in db.tags.find({"repo_id": repo_id})}
    associations = {a["digest"]: a for a in db.repo_manifests.find({"repo_id": repo_id})}
    manifest_docs = _find_by_id(db.manifests, associations)
    # A list synced for some platforms names children the repository does not hold on purpose.
    partial = {digest for digest, association in associations.items() if association.get(PARTIAL)}
    wanted = set(tags.values()) - manifest_docs.keys()
    while True:
        wanted |= {child["digest"] for digest, manifest in manifest_docs.items() if digest not in partial
                   for child in manifest.get("children") or []} - manifest_docs.keys()
        found = _find_by_id(db.manifests, wanted) if wanted else {}
        if not found:
            break
        for digest in found:
            log.warning("manifest %s is needed in %s but not associated with it; published from its unit",
                        digest, repo_id)
        manifest_docs.update(found)
        wanted -= found.keys()
    listed = sorted(associations.keys() | manifest_docs.keys())
    manifests = {digest: _manifest_entry(associations.get(digest, {}), manifest_docs.get(digest), associations)
                 for digest in listed}
    manifest_blobs = {digest: list(manifest.get("blob_digests") or []) for digest, manifest in manifest_docs.items()}

    blobs = {a["digest"]: a.get("size") for a in db.repo_blobs.find({"repo_id": repo_id})}
    # A manifest's config and layers are pullable through it even if an association is missing.
    referenced = {digest for needed in manifest_blobs.values() for digest in needed}
    unassociated = referenced - blobs.keys()
    for digest, blob in _find_by_id(db.blobs, unassociated).items():
        blobs[digest] = blob.get("size")

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
    return RepositoryContent(document, manifest_blobs, unassociated)


def repository_document(db: Collections, repo: dict[str, Any], published: datetime) -> tuple[dict[str, Any], set[str]]:
    """``repository.json`` of ``repo`` and the blob digests it must list but the repo did not associate."""
    content = read_repository(db, repo, published)
    return content.document, content.unassociated


def check_document(content: RepositoryContent) -> None:
    """Raise ``PublishError`` unless Crane would serve the document whole (the rules of published_format)."""
    try:
        fmt.check_repository(content.document, content.manifest_blobs)
    except ValueError as exc:
        raise PublishError(f"repository {content.document['name']!r} is not published: its content is "
                           f"not whole ({exc}); the live version stays") from None


# --- publish and unpublish -------------------------------------------------------------

def _new_version(now: datetime) -> str:
    """Sorts by time; the random suffix keeps two publishes in one microsecond apart."""
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + _random()[:8]


def prepare_published_tree(root: Path) -> None:
    """Make ``root`` a published tree with nothing in it yet, so a Crane started before the first publish is ready.

    A new tree is format 2 (``FORMAT``, journal, empty catalog); an existing one is left as it is.
    """
    publish_switch.ensure_tree(root)


def _require_current_format(root: Path) -> None:
    """Refuse to write into a tree of another format: its readers would not see the change."""
    found = publish_switch.tree_format(root)
    if found != fmt.FORMAT_VERSION:
        says = f"format {found}" if found else f"of an unknown format (see its {fmt.FORMAT_FILE})"
        raise PublishError(f"the published tree {root} is {says}, and this version writes format "
                           f"{fmt.FORMAT_VERSION}: run `pulp-registry republish --all` to upgrade it")


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


def _link_all(services: Any, root: Path, repo_id: str, content: RepositoryContent, report: Progress) -> None:
    """Link every manifest and blob the document lists into ``blobs/``; the new names are fsynced.

    With a storage that publishes blobs itself (``S3Storage.publish_blob``: a copy in the bucket,
    which Crane redirects to), configs and layers go there; manifests are always in ``blobs/``.
    """
    document = content.document
    publish_blob = getattr(services.storage, "publish_blob", None)
    directories: set[Path] = set()
    manifest_digests = list(document["manifests"])
    for done, digest in enumerate(manifest_digests, 1):
        target = fmt.blob_path(root, digest)
        if not _link_content(services.storage, digest, target):
            raise PublishError(f"manifest {digest} of repository {repo_id!r} is missing from content storage")
        directories.add(target.parent)
        report({"step": "manifests", "done": done, "total": len(manifest_digests)})
    report({"step": "manifests", "done": len(manifest_digests), "total": len(manifest_digests)})

    blob_digests = list(document["blobs"])
    for done, digest in enumerate(blob_digests, 1):
        target = fmt.blob_path(root, digest)
        local = digest in document["manifests"] or publish_blob is None
        published = _link_content(services.storage, digest, target) if local else publish_blob(digest)
        if not published:
            if digest not in content.unassociated:
                raise PublishError(f"blob {digest} of repository {repo_id!r} is missing from content storage")
            # check_document names the manifests that need it.
            log.warning("blob %s named by a manifest of %s is not stored; not published", digest, repo_id)
            del document["blobs"][digest]
        elif local:
            directories.add(target.parent)
        report({"step": "blobs", "done": done, "total": len(blob_digests)})
    report({"step": "blobs", "done": len(blob_digests), "total": len(blob_digests)})
    for directory in sorted(directories):
        fsync_dir(directory)   # the links are durable before a version that lists them is


def _remove_leftover_links(repo_dir: Path) -> None:
    """``current.<random>`` links a publish killed before its rename left (publishes of a repository never overlap)."""
    for entry in repo_dir.iterdir():
        if entry.name.startswith(f"{fmt.CURRENT_LINK}.") and entry.is_symlink():
            entry.unlink(missing_ok=True)


def publish_repository(services: Any, repo_id: str, progress: Progress | None = None) -> dict[str, Any]:
    """Write a new version of repository ``repo_id`` into the published tree and switch to it.

    The version is checked against the rules Crane loads a version by before
    ``current`` is switched to it; one that is not whole fails the publish and
    the live version stays.
    """
    report = progress or (lambda _report: None)
    db: Collections = services.db
    repo = db.repositories.find_one({"_id": repo_id})
    if repo is None:
        raise PublishError(f"repository {repo_id!r} does not exist")
    if repo.get("deleting"):
        # A late publish must not bring back to Crane a repository its removal has unpublished.
        log.info("publish of %s (%s) skipped: the repository is being deleted", repo["name"], repo_id)
        return {"skipped": "the repository is being deleted"}
    root = Path(services.settings.published_dir)
    prepare_published_tree(root)
    _require_current_format(root)

    now = utcnow()
    content = read_repository(db, repo, now)
    check_document(content)
    _link_all(services, root, repo_id, content, report)
    check_document(content)      # again: a blob that was not stored is dropped while linking
    document = content.document

    repo_dir = fmt.repository_dir(root, repo["name"])
    version = _new_version(now)
    version_dir = repo_dir / fmt.VERSIONS_DIR / version
    make_dirs(version_dir)
    _remove_leftover_links(repo_dir)
    _inline_manifests(root, document)
    document = {"format": document.pop("format"), "version": version, **document}
    write_tag_documents(version_dir, document)   # before repository.json, whose fsync commits them too
    write_atomic(version_dir / fmt.REPOSITORY_JSON, fmt.dump_repository(document))

    previous = _switch_current(repo_dir, version)
    publish_switch.record_change(root, repo["name"], version, document["protected"])
    _remove_old_versions(repo_dir, {version} | ({previous} if previous else set()))
    db.repositories.update_one({"_id": repo_id}, {"$set": {"last_published": now}})
    report({"step": "switch", "done": 1, "total": 1})

    result = {"tags": len(document["tags"]), "manifests": len(document["manifests"]),
              "blobs": len(document["blobs"]), "version": version}
    log.info("published %s (%s): %s", repo["name"], repo_id, result)
    history.record(db, repo_id, "publish", result)
    return result


def unpublish_repository(settings: Any, name: str) -> None:
    """Remove repository ``name`` from the published tree: rename it away, record the removal, delete."""
    root = Path(settings.published_dir)
    repo_dir = fmt.repository_dir(root, name)
    if not repo_dir.exists() and not repo_dir.is_symlink():
        return
    trash = root / f".trash-{_random()}"
    os.rename(repo_dir, trash)
    fsync_dir(repo_dir.parent)
    publish_switch.record_change(root, name, None, None)
    shutil.rmtree(trash, ignore_errors=True)
