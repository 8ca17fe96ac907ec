"""Why a blob or manifest is kept (or not): the repositories, tags and manifests that hold it.

``registry-admin orphans explain DIGEST`` and ``GET /orphans/<digest>/``; what counts as
held is orphan clean-up's rule (``orphans.py``).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from pulp_registry import oci, published_files
from pulp_registry import published_format as fmt
from pulp_registry.db import Collections, as_utc, isoformat
from pulp_registry.orphans import QUERY_BATCH, OrphanError, referencing_manifests

#: How many repositories ``explain`` names at most.
EXPLAIN_LIMIT = 100


def _ancestors(db: Collections, digest: str) -> set[str]:
    """Every manifest that names ``digest``, directly or through a list or index."""
    found: set[str] = set()
    frontier = [digest]
    while frontier:
        current = frontier.pop()
        for reference in referencing_manifests(db, current, limit=QUERY_BATCH):
            if reference not in found:
                found.add(reference)
                frontier.append(reference)
    return found


def explain(services: Any, digest: str) -> dict[str, Any]:
    """Why ``digest`` is kept: which repositories hold it, through which tags and manifests."""
    if not isinstance(digest, str) or not oci.is_digest(digest):
        raise OrphanError("digest", f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    db = services.db
    grace = services.settings.orphan_grace_period
    manifest_doc = db.manifests.find_one({"_id": digest})
    blob_doc = db.blobs.find_one({"_id": digest})
    document = manifest_doc or blob_doc
    kind = "manifest" if manifest_doc else "blob" if blob_doc else "unknown"
    stored_size = services.storage.size(digest)
    published = fmt.blob_path(published_files.published_root(services), digest).is_file()

    ancestors = _ancestors(db, digest)
    holders: dict[str, dict[str, set[str]]] = {}

    def holder(repo_id: str) -> dict[str, set[str]]:
        return holders.setdefault(repo_id, {"tags": set(), "manifests": set()})

    for collection in (db.repo_blobs, db.repo_manifests):
        for association in collection.find({"digest": digest}, {"repo_id": 1}).limit(EXPLAIN_LIMIT):
            holder(association["repo_id"])
    for association in db.repo_manifests.find({"digest": {"$in": sorted(ancestors)}},
                                              {"repo_id": 1, "digest": 1}).limit(EXPLAIN_LIMIT * 10):
        holder(association["repo_id"])["manifests"].add(association["digest"])
    for tag in db.tags.find({"manifest_digest": {"$in": sorted(ancestors | {digest})}},
                            {"repo_id": 1, "name": 1}).limit(EXPLAIN_LIMIT * 10):
        holder(tag["repo_id"])["tags"].add(tag["name"])
    names = {repo["_id"]: repo["name"] for repo in db.repositories.find({"_id": {"$in": sorted(holders)}},
                                                                        {"name": 1})}
    held_by = sorted(({"repository": names.get(repo_id, repo_id), "repo_id": repo_id,
                       "tags": sorted(held["tags"]), "manifests": sorted(held["manifests"])}
                      for repo_id, held in holders.items()), key=lambda entry: entry["repository"])

    created = as_utc(document.get("created")) if document else None
    size = document.get("size") if document and document.get("size") is not None else stored_size
    orphan = not held_by and (document is not None or stored_size is not None or published)
    return {"digest": digest, "kind": kind, "stored": stored_size is not None, "size": size,
            "published": published, "orphan": orphan, "held_by": held_by,
            "reason": _reason(kind, held_by, orphan, ancestors, created, grace)}


def _reason(kind: str, held_by: list[dict[str, Any]], orphan: bool, ancestors: set[str],
            created: datetime | None, grace: int) -> str:
    if held_by:
        names = ", ".join(entry["repository"] for entry in held_by[:5])
        more = f" and {len(held_by) - 5} more" if len(held_by) > 5 else ""
        count = f"{len(held_by)} repositor{'y' if len(held_by) == 1 else 'ies'}"
        return f"kept: held by {count} ({names}{more})"
    if not orphan:
        return "unknown: the registry stores no blob or manifest with this digest"
    what = "a manifest" if kind == "manifest" else "a blob" if kind == "blob" else "a file without a document"
    named = f"; only manifests no repository holds name it ({len(ancestors)})" if ancestors else ""
    if created is not None and created > datetime.now(timezone.utc) - timedelta(seconds=grace):
        until = isoformat(created + timedelta(seconds=grace))
        return (f"orphan: {what} no repository holds{named}; it is younger than the grace period "
                f"({grace} s), so clean-up keeps it until {until} (a push may be about to use it)")
    return f"orphan: {what} no repository holds{named}; the next clean-up removes it"
