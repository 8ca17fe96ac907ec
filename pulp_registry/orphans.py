"""Orphan clean-up: remove the blobs and manifests no repository holds, and what crashes leave behind.

A digest is *held* when a repository has an association with it (``repo_blobs``,
``repo_manifests``), a tag points at it, or a manifest document names it (a
config, a layer, a child of a list or index) that is itself not an orphan. What
is not held and older than the grace period is an orphan: its document, its
file in content storage and its file in the published tree's ``blobs/`` (unless
a published version still lists it) are removed. Crash leftovers go too:
temporary files, upload sessions nobody finished, ``.trash-*`` directories.

Clean-up runs while pushes, syncs and publishes go on. A push writes the bytes
first (storage), then the unit document, then the association; the grace period
covers that window: a unit or file younger than it is never touched, and
storage touches a file whose bytes are written again, so re-pushing content that
was orphaned long ago makes it young again. Before each deletion the unit is
checked again, with writes that cannot lose a racing push:

1. the document is deleted with a conditional delete (``created`` still older
   than the cut-off: a document a push re-created is younger and stays);
2. then the associations are checked again: if one appeared, the document is
   put back and the file kept;
3. then the file is removed only if it was not written since the cut-off.

What remains is a push that checked the file exists (``content.add_blob``) more
than the grace period before writing its association: a push stalled for an
hour between two steps that follow each other at once. A grace period of 0 says
"nothing is being pushed now": everything unreferenced goes, and a push under
way may fail (it is refused, never left half-stored: add_blob checks the file).

The published tree: a file of ``blobs/`` goes only if no version Crane may be
serving lists it (the current version of every repository, versions newer than
it that a publish is writing, and the previous one while the switch is younger
than the grace period), the database holds no document or association for it,
and it is older than the grace period. After the removals, any file a version
written meanwhile lists is linked back from content storage. A pull under way
keeps its open file and reads it to the end: unlinking never cuts it.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from pulp_registry import published_files, published_format as fmt
from pulp_registry.db import Collections, DuplicateKeyError, as_utc, isoformat
from pulp_registry.registry_errors import BlobUploadUnknown
from pulp_registry.storage import Leftover
from pulp_registry.tasks import Progress

log = logging.getLogger(__name__)

#: Seconds an upload session that still has its database document may sit idle (no chunk, no
#: finish) before it expires. Not the grace period: a client may pause a long push, and a
#: clean-up with a grace period of 0 must not break a push that is only slow.
UPLOAD_SESSION_EXPIRY = 24 * 3600
#: Digests per ``$in`` query, so no query grows with the registry.
QUERY_BATCH = 1000


class OrphanError(ValueError):
    """Bad input to a clean-up or an explain; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def validate_grace_period(value: Any, default: int) -> int:
    """``value`` (None: ``default``) as a non-negative whole number of seconds."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OrphanError("grace_period", f"grace_period must be a non-negative whole number of seconds, "
                          f"not {value!r}")
    return value


# --- what holds a digest -------------------------------------------------------------------


def _directly_held(db: Collections, digest: str) -> bool:
    """A repository has an association with ``digest`` or a tag pointing at it."""
    return (db.repo_blobs.find_one({"digest": digest}, {"_id": 1}) is not None
            or db.repo_manifests.find_one({"digest": digest}, {"_id": 1}) is not None
            or db.tags.find_one({"manifest_digest": digest}, {"_id": 1}) is not None)


def referencing_manifests(db: Collections, digest: str, limit: int = 0) -> list[str]:
    """Manifests whose document names ``digest`` as a config, layer or child."""
    query = {"$or": [{"blob_digests": digest}, {"children.digest": digest}]}
    return [doc["_id"] for doc in db.manifests.find(query, {"_id": 1}).limit(limit)]


def _held(db: Collections, digest: str, orphan_manifests: set[str] | frozenset[str] = frozenset()) -> bool:
    """Held by a repository, or named by a manifest that is not among ``orphan_manifests``."""
    if _directly_held(db, digest):
        return True
    return any(reference not in orphan_manifests for reference in referencing_manifests(db, digest))


def _has_document(db: Collections, digest: str) -> bool:
    return (db.blobs.find_one({"_id": digest}, {"_id": 1}) is not None
            or db.manifests.find_one({"_id": digest}, {"_id": 1}) is not None)


def _documented(db: Collections, digests: list[str]) -> set[str]:
    """Those of ``digests`` that have a ``blobs`` or ``manifests`` document."""
    found: set[str] = set()
    for start in range(0, len(digests), QUERY_BATCH):
        batch = digests[start:start + QUERY_BATCH]
        for collection in (db.blobs, db.manifests):
            found.update(doc["_id"] for doc in collection.find({"_id": {"$in": batch}}, {"_id": 1}))
    return found


# --- the scan: what a clean-up would remove now -------------------------------------------


@dataclass
class Unit:
    """An orphan: a unit document and/or its files, one per digest."""

    digest: str
    kind: str                        # "blob" or "manifest"
    size: int
    created: datetime | None
    document: dict[str, Any] | None  # as read; None for a file without a document
    stored: bool                     # a file in content storage
    published: bool = False          # a file in the published tree no version lists
    in_bucket: bool = False          # a published copy in the S3 bucket (storage_driver: s3) no version lists

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "created": isoformat(self.created)}


@dataclass
class LeftoverItem:
    """A crash leftover: ``kind`` "upload" (a session, its file and/or document) or "temporary"."""

    kind: str
    size: int
    path: Path | None = None
    storage_leftover: Leftover | None = None
    upload_id: str | None = None
    #: The upload's document goes too (an expired session, or a document whose file is gone).
    upload_document: bool = False


@dataclass
class Scan:
    grace_period: int
    cutoff: datetime                 # units created before it may go
    idle_since: float                # files written before it (epoch seconds) may go
    session_idle_since: float        # sessions with a document untouched before it expired
    listing: set[str] | None         # what published versions list; None: unknown, keep the tree
    manifests: list[Unit] = field(default_factory=list)
    blobs: list[Unit] = field(default_factory=list)
    leftovers: list[LeftoverItem] = field(default_factory=list)


def _unit_from_document(document: dict[str, Any], kind: str, stored_size: int | None) -> Unit:
    size = document.get("size")
    return Unit(document["_id"], kind, int(size if size is not None else stored_size or 0),
                as_utc(document.get("created")), document, stored_size is not None)


def _orphan_manifests(services: Any, cutoff: datetime) -> list[Unit]:
    """Old manifests nothing holds, parents (lists, indexes) before the children only they name."""
    db = services.db
    candidates: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for document in db.manifests.find({"created": {"$lt": cutoff}}):
        digest = document["_id"]
        if not _directly_held(db, digest) and not _stored_since(services.storage, digest, cutoff.timestamp()):
            candidates[digest] = (document, referencing_manifests(db, digest))
    orphans: list[str] = []
    orphan_set: set[str] = set()
    changed = True
    while changed:
        changed = False
        for digest, (_document, references) in candidates.items():
            if digest not in orphan_set and all(reference in orphan_set for reference in references):
                orphans.append(digest)
                orphan_set.add(digest)
                changed = True
    return [_unit_from_document(candidates[digest][0], "manifest", services.storage.size(digest))
            for digest in orphans]


def _stored_since(storage: Any, digest: str, idle_since: float) -> bool:
    """The stored bytes of ``digest`` were written (or written again) at or after ``idle_since``."""
    path = storage.local_path(digest)
    try:
        return path is not None and path.stat().st_mtime >= idle_since
    except FileNotFoundError:
        return False


def _scan(services: Any, grace_period: int) -> Scan:
    db = services.db
    now = time.time()
    cutoff = datetime.fromtimestamp(now, timezone.utc) - timedelta(seconds=grace_period)
    root = published_files.published_root(services)
    scan = Scan(grace_period, cutoff, now - grace_period, now - max(UPLOAD_SESSION_EXPIRY, grace_period),
                published_files.published_listing(root, now - grace_period))

    scan.manifests = _orphan_manifests(services, cutoff)
    orphan_manifests = {unit.digest for unit in scan.manifests}
    for document in db.blobs.find({"created": {"$lt": cutoff}}):
        digest = document["_id"]
        if _stored_since(services.storage, digest, scan.idle_since):
            continue      # its bytes were written again since the cut-off: a push is re-using them
        if not _held(db, digest, orphan_manifests) and (
                db.manifests.find_one({"_id": digest}, {"_id": 1}) is None or digest in orphan_manifests):
            scan.blobs.append(_unit_from_document(document, "blob", services.storage.size(digest)))
    units = {unit.digest: unit for unit in scan.manifests + scan.blobs}

    # Files without a document: a push that stopped between its storage write and its document.
    files = [stored for stored in services.storage.iter_content()
             if stored.digest not in units and stored.modified < scan.idle_since]
    documented = _documented(db, [stored.digest for stored in files])
    for stored in files:
        if stored.digest not in documented and not _held(db, stored.digest, orphan_manifests):
            unit = Unit(stored.digest, "blob", stored.size, datetime.fromtimestamp(stored.modified, timezone.utc),
                        None, True)
            scan.blobs.append(unit)
            units[unit.digest] = unit

    if scan.listing is not None:
        unlisted = [(digest, path) for digest, path in published_files.blob_files(root) if digest not in scan.listing]
        documented = _documented(db, [digest for digest, _path in unlisted if digest not in units])
        for digest, path in unlisted:
            if digest in units:
                units[digest].published = True
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if (digest in documented or stat.st_mtime >= scan.idle_since
                    or _held(db, digest, orphan_manifests)):
                continue
            unit = Unit(digest, "blob", stat.st_size, datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                        None, services.storage.exists(digest), published=True)
            scan.blobs.append(unit)
            units[digest] = unit
        _scan_bucket(services, scan, units, orphan_manifests)

    scan.leftovers = list(_scan_leftovers(services, scan, root))
    return scan


def _scan_bucket(services: Any, scan: Scan, units: dict[str, Unit], orphan_manifests: set[str]) -> None:
    """Published copies in the S3 bucket no version lists (``S3Storage.iter_published``), as for ``blobs/``."""
    if not hasattr(services.storage, "iter_published"):
        return
    assert scan.listing is not None
    for stored in services.storage.iter_published():
        if stored.digest in scan.listing:
            continue
        if stored.digest in units:
            units[stored.digest].in_bucket = True
        elif not (stored.modified >= scan.idle_since or _has_document(services.db, stored.digest)
                  or _held(services.db, stored.digest, orphan_manifests)):
            unit = Unit(stored.digest, "blob", stored.size, datetime.fromtimestamp(stored.modified, timezone.utc),
                        None, services.storage.exists(stored.digest), in_bucket=True)
            scan.blobs.append(unit)
            units[stored.digest] = unit


def _scan_leftovers(services: Any, scan: Scan, root: Path) -> Iterator[LeftoverItem]:
    db = services.db
    sessions_with_files: set[str] = set()
    for leftover in services.storage.iter_leftovers():
        if leftover.kind == "temporary":
            if leftover.modified < scan.idle_since:
                yield LeftoverItem("temporary", leftover.size, leftover.path, leftover)
            continue
        sessions_with_files.add(leftover.upload_id or "")
        if leftover.kind == "finishing":
            if leftover.modified < scan.idle_since:
                yield LeftoverItem("upload", leftover.size, leftover.path, leftover, leftover.upload_id)
            continue
        has_document = db.uploads.find_one({"_id": leftover.upload_id}, {"_id": 1}) is not None
        idle_since = scan.session_idle_since if has_document else scan.idle_since
        if leftover.modified < idle_since:
            yield LeftoverItem("upload", leftover.size, leftover.path, leftover, leftover.upload_id,
                               upload_document=has_document)
    # A document whose session file is gone (the process died between the two writes).
    for upload in db.uploads.find({"started": {"$lt": scan.cutoff}}, {"_id": 1}):
        if upload["_id"] not in sessions_with_files:
            yield LeftoverItem("upload", 0, upload_id=upload["_id"], upload_document=True)
    for path in published_files.leftovers(root):
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        if max(stat.st_mtime, stat.st_ctime) < scan.idle_since:
            size = published_files.tree_size(path) if path.is_dir() and not path.is_symlink() else stat.st_size
            yield LeftoverItem("temporary", size, path)


def _leftover_summary(leftovers: Iterable[LeftoverItem]) -> dict[str, int]:
    items = list(leftovers)
    return {"uploads": sum(1 for item in items if item.kind == "upload"),
            "temporary_files": sum(1 for item in items if item.kind == "temporary"),
            "bytes": sum(item.size for item in items)}


def find_orphans(services: Any, grace_period: int | None = None) -> dict[str, Any]:
    """What a clean-up with ``grace_period`` (None: the setting) would remove now; nothing changes.

    ``bytes`` counts everything it would free, leftovers included.
    """
    grace = validate_grace_period(grace_period, services.settings.orphan_grace_period)
    scan = _scan(services, grace)
    leftovers = _leftover_summary(scan.leftovers)
    unit_bytes = sum(unit.size for unit in scan.manifests + scan.blobs)
    return {
        "grace_period": grace,
        "blobs": [unit.to_json() for unit in scan.blobs],
        "manifests": [unit.to_json() for unit in scan.manifests],
        "count": len(scan.blobs) + len(scan.manifests),
        "bytes": unit_bytes + leftovers["bytes"],
        "leftovers": leftovers,
    }


# --- the clean-up --------------------------------------------------------------------------


def _restore(collection: Any, document: dict[str, Any]) -> None:
    """Put back a unit document deleted a moment ago (a push associated it meanwhile)."""
    fields = {key: value for key, value in document.items() if key != "_id"}
    try:
        collection.update_one({"_id": document["_id"]}, {"$setOnInsert": fields}, upsert=True)
    except DuplicateKeyError:
        pass  # the push re-created it first


def _remove_unit(services: Any, scan: Scan, unit: Unit, root: Path) -> int | None:
    """Remove one orphan whole (document, then files) unless a push took it since the scan.

    Returns the bytes freed, or None when the unit was kept.
    """
    db = services.db
    collection = db.manifests if unit.kind == "manifest" else db.blobs
    removed: dict[str, Any] | None = None
    if unit.document is not None:
        removed = collection.find_one_and_delete({"_id": unit.digest, "created": {"$lt": scan.cutoff}})
        if removed is None:
            return None   # re-created by a push since the scan, or removed by another clean-up
        if _held(db, unit.digest):
            _restore(collection, removed)
            return None
    elif _has_document(db, unit.digest) or _held(db, unit.digest):
        return None
    if _has_document(db, unit.digest):
        return 0          # the same bytes are also a unit of the other kind, which stays: so does the file
    freed = 0
    if unit.stored:
        size = services.storage.remove_if_idle(unit.digest, scan.idle_since)
        if size is None:  # written again since the cut-off: a push is using these bytes
            if removed is not None:
                _restore(collection, removed)
            return None
        freed = size
    if unit.published:
        size = published_files.remove_if_idle(fmt.blob_path(root, unit.digest), scan.idle_since)
        freed = max(freed, size or 0)   # a hard link to the stored bytes frees nothing more
    if unit.in_bucket:                  # a copy of its own: its bytes count
        freed += services.storage.remove_published_if_idle(unit.digest, scan.idle_since) or 0
    return freed


def _relink_listed(services: Any, root: Path, removed: set[str], removed_in_bucket: Iterable[str] = ()) -> None:
    """Put back any removed published file (or bucket copy) a version written during the clean-up lists."""
    if not removed and not removed_in_bucket:
        return
    listing = published_files.published_listing(root, time.time())
    for digest in sorted(set(removed_in_bucket) & (listing or set())):
        if services.storage.publish_blob(digest):
            log.warning("published %s was listed by a version written during the clean-up: copied back", digest)
        else:
            log.error("published %s is listed by a version written during the clean-up, and its bytes are gone; "
                      "push it again", digest)
    for digest in sorted(removed & (listing or set())):
        target = fmt.blob_path(root, digest)
        source = services.storage.local_path(digest)
        if target.exists():
            continue
        if source is None:
            log.error("published %s is listed by a version written during the clean-up, and its bytes are gone; "
                      "push it again", digest)
            continue
        tmp = target.parent / f".{target.name}.relink.tmp"
        try:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log.warning("published %s was listed by a version written during the clean-up: linked back", digest)


def _remove_leftover(services: Any, scan: Scan, item: LeftoverItem) -> int | None:
    db = services.db
    if item.storage_leftover is not None:
        idle_since = scan.session_idle_since if item.upload_document else scan.idle_since
        size = services.storage.remove_leftover(item.storage_leftover, idle_since)
        if size is None:
            return None
        if item.upload_document:
            db.uploads.delete_one({"_id": item.upload_id})
        return size
    if item.upload_id is not None:
        try:
            services.storage.upload_size(item.upload_id)
            return None   # the session file exists after all: it is not a leftover
        except BlobUploadUnknown:
            pass
        deleted = db.uploads.delete_one({"_id": item.upload_id, "started": {"$lt": scan.cutoff}})
        return 0 if deleted.deleted_count else None
    assert item.path is not None
    return published_files.remove_if_idle(item.path, scan.idle_since, use_ctime=True)


def cleanup_orphans(services: Any, progress: Progress, *, grace_period: int | None = None) -> dict[str, int]:
    """The work of the ``orphan_cleanup`` task: remove orphans and leftovers; what was removed.

    ``progress`` is called between units, each removed whole or not at all; it may raise
    ``tasks.TaskStopped`` (cancel, time limit), which ends the clean-up there.
    """
    grace = validate_grace_period(grace_period, services.settings.orphan_grace_period)
    scan = _scan(services, grace)
    root = published_files.published_root(services)
    result = {"blobs": 0, "manifests": 0, "uploads": 0, "temporary_files": 0, "bytes_freed": 0}
    removed_published: set[str] = set()
    removed_in_bucket: set[str] = set()
    try:
        for step, units in (("manifests", scan.manifests), ("blobs", scan.blobs)):
            progress({"step": step, "done": 0, "total": len(units)})
            for done, unit in enumerate(units, 1):
                freed = _remove_unit(services, scan, unit, root)
                if freed is not None:
                    result[step] += 1
                    result["bytes_freed"] += freed
                    if unit.published:
                        removed_published.add(unit.digest)
                    if unit.in_bucket:
                        removed_in_bucket.add(unit.digest)
                progress({"step": step, "done": done, "total": len(units)})
    finally:
        _relink_listed(services, root, removed_published, removed_in_bucket)
    progress({"step": "leftovers", "done": 0, "total": len(scan.leftovers)})
    for done, item in enumerate(scan.leftovers, 1):
        freed = _remove_leftover(services, scan, item)
        if freed is not None:
            result["uploads" if item.kind == "upload" else "temporary_files"] += 1
            result["bytes_freed"] += freed
        progress({"step": "leftovers", "done": done, "total": len(scan.leftovers)})
    log.info("orphan clean-up (grace period %ss): %s", grace, result)
    return result
