"""Removing content from a repository: tags, manifests (with their referrers and index children), blobs.

Used by ``DELETE /v2/<name>/manifests/<reference>`` and ``/blobs/<digest>``, by
the REST ``remove`` action and by ``registry-admin remove``. Only associations
go: content files stay for orphan clean-up, which removes what no repository
holds.

Removal goes top-down, so that wherever it stops it leaves no broken reference
(a tag naming a manifest the repository does not hold, a held manifest whose
blob or child is not held), only content nothing uses:

1. the manifest's association is marked ``removing`` (``content.REMOVING``, one
   write): the registry answers 404 for it from now on, and any later removal
   in the repository finishes the job (``finish_pending_removals``);
2. the tags pointing at it go, then its referrers (manifests whose ``subject``
   it is), each removed the same way, recursively;
3. its children (for an index) and its blobs are marked ``if-unused``;
4. its association is deleted, with a filter on the mark: a push of the same
   manifest meanwhile clears the mark (``content``) and keeps it; a tag a
   racing push pointed at it meanwhile is deleted after it;
5. the marked children and blobs go, each only if nothing the repository
   holds uses it any more (a child no other index lists and no tag names, a
   blob no other manifest needs); one still used is unmarked and kept.

A manifest asked for that an index of the repository still lists, and a blob a
manifest still needs, cannot go yet without breaking that index or manifest:
their removal is accepted (the registry answers 404 for them at once, their
tags and referrers go) and finishes when what uses them goes. Every step is
one single-document write, so removals and pushes racing on the same
repository never leave a broken reference, and running a removal again after
a crash finishes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from pulp_registry import content, history, oci
from pulp_registry.content import IF_UNUSED_MARK, REMOVE_MARK, REMOVING
from pulp_registry.db import Collections
from pulp_registry.registry_errors import BlobUnknown, ManifestUnknown, RegistryError

MARKED = {"$exists": True}
#: Digests per ``$in`` query, so no query grows with the repository.
_BATCH = 500


@dataclass
class Removed:
    """What a removal took out of the repository, in the order it went."""

    tags: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    referrers: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)

    def add(self, other: "Removed") -> None:
        self.tags += other.tags
        self.manifests += other.manifests
        self.referrers += other.referrers
        self.blobs += other.blobs

    def __bool__(self) -> bool:
        return bool(self.tags or self.manifests or self.referrers or self.blobs)


# --- what uses what ------------------------------------------------------------------


def _held(db: Collections, repo_id: str, digests: Iterable[str], exclude: str | None = None) -> list[str]:
    """Those of manifests ``digests`` that the repository holds (marked or not), ``exclude`` left out."""
    wanted = [digest for digest in dict.fromkeys(digests) if digest != exclude]
    held: list[str] = []
    for start in range(0, len(wanted), _BATCH):
        held.extend(a["digest"] for a in db.repo_manifests.find(
            {"repo_id": repo_id, "digest": {"$in": wanted[start:start + _BATCH]}}, {"digest": 1}))
    return held


def parents_of(db: Collections, repo_id: str, digest: str) -> list[str]:
    """Manifest lists and indexes of the repository that list manifest ``digest``."""
    listing = [doc["_id"] for doc in db.manifests.find({"children.digest": digest}, {"_id": 1})]
    return _held(db, repo_id, listing, exclude=digest)


def referrers_of(db: Collections, repo_id: str, digest: str) -> list[str]:
    """Manifests of the repository whose ``subject`` is ``digest``."""
    referring = [doc["_id"] for doc in db.manifests.find({"subject": digest}, {"_id": 1})]
    return _held(db, repo_id, referring, exclude=digest)


def manifests_using_blob(db: Collections, repo_id: str, digest: str) -> list[str]:
    """Manifests of the repository that need blob ``digest`` (as config or layer)."""
    using = [doc["_id"] for doc in db.manifests.find({"blob_digests": digest}, {"_id": 1})]
    return _held(db, repo_id, using)


def _tags_of(db: Collections, repo_id: str, digest: str) -> list[str]:
    return [tag["name"] for tag in db.tags.find({"repo_id": repo_id, "manifest_digest": digest}, {"name": 1})]


def _delete_tag(db: Collections, repo_id: str, name: str, digest: str, removed: Removed) -> None:
    """Delete tag ``name`` if it still names ``digest`` (one moved to another manifest meanwhile stays)."""
    if db.tags.delete_one({"repo_id": repo_id, "name": name, "manifest_digest": digest}).deleted_count:
        removed.tags.append(name)


# --- the steps -----------------------------------------------------------------------


def _mark(collection: Any, repo_id: str, digest: str, mode: str) -> bool:
    """Mark a held association for removal; ``if-unused`` never weakens a ``remove``. False if not held."""
    key = {"repo_id": repo_id, "digest": digest}
    if mode == REMOVE_MARK:
        return bool(collection.update_one(key, {"$set": {REMOVING: mode}}).matched_count)
    collection.update_one({**key, REMOVING: {"$exists": False}}, {"$set": {REMOVING: mode}})
    return collection.find_one({**key, REMOVING: MARKED}, {"_id": 1}) is not None


def _unmark(collection: Any, repo_id: str, digest: str, mode: str) -> None:
    collection.update_one({"repo_id": repo_id, "digest": digest, REMOVING: mode}, {"$unset": {REMOVING: ""}})


def _remove_marked_manifest(db: Collections, repo_id: str, digest: str, removed: Removed,
                            as_referrer: bool = False) -> bool:
    """Carry on the removal of a marked manifest (module doc); True once its association is gone."""
    association = db.repo_manifests.find_one({"repo_id": repo_id, "digest": digest, REMOVING: MARKED})
    if association is None:
        return False  # already gone, or pushed again meanwhile
    mode = association[REMOVING]
    parents = parents_of(db, repo_id, digest)
    if mode == IF_UNUSED_MARK and (parents or _tags_of(db, repo_id, digest)):
        _unmark(db.repo_manifests, repo_id, digest, mode)  # still used: it stays
        return False
    if mode == REMOVE_MARK:
        for name in _tags_of(db, repo_id, digest):
            _delete_tag(db, repo_id, name, digest, removed)
    for referrer in referrers_of(db, repo_id, digest):
        if _mark(db.repo_manifests, repo_id, referrer, REMOVE_MARK):
            _remove_marked_manifest(db, repo_id, referrer, removed, as_referrer=True)
    if parents:
        return False  # an index still lists it: it goes with the last one (hidden meanwhile)
    unit = db.manifests.find_one({"_id": digest}, {"children": 1, "blob_digests": 1}) or {}
    children = [child["digest"] for child in unit.get("children") or []]
    marked_children = [child for child in _held(db, repo_id, children, exclude=digest)
                       if _mark(db.repo_manifests, repo_id, child, IF_UNUSED_MARK)]
    marked_blobs = [blob for blob in dict.fromkeys(unit.get("blob_digests") or [])
                    if _mark(db.repo_blobs, repo_id, blob, IF_UNUSED_MARK)]
    if not db.repo_manifests.delete_one({"repo_id": repo_id, "digest": digest, REMOVING: mode}).deleted_count:
        return False  # pushed again meanwhile: the push cleared the mark and keeps it
    for name in _tags_of(db, repo_id, digest):  # a tag a racing push pointed at it meanwhile
        _delete_tag(db, repo_id, name, digest, removed)
    (removed.referrers if as_referrer else removed.manifests).append(digest)
    for child in marked_children:
        _remove_marked_manifest(db, repo_id, child, removed)
    for blob in marked_blobs:
        _remove_marked_blob(db, repo_id, blob, removed)
    return True


def _remove_marked_blob(db: Collections, repo_id: str, digest: str, removed: Removed) -> bool:
    """Unlink a marked blob unless a manifest of the repository needs it; True once it is gone."""
    association = db.repo_blobs.find_one({"repo_id": repo_id, "digest": digest, REMOVING: MARKED})
    if association is None:
        return False
    if manifests_using_blob(db, repo_id, digest):
        if association[REMOVING] == IF_UNUSED_MARK:
            _unmark(db.repo_blobs, repo_id, digest, IF_UNUSED_MARK)
        return False  # asked for: it goes with the last manifest that needs it
    if not db.repo_blobs.delete_one({"_id": association["_id"], REMOVING: association[REMOVING]}).deleted_count:
        return False
    if manifests_using_blob(db, repo_id, digest):  # a manifest pushed that very moment needs it: put it back
        association.pop(REMOVING)
        content.restore_blob_association(db, association)
        return False
    removed.blobs.append(digest)
    return True


def finish_pending_removals(services: Any, repo: content.Repo) -> Removed:
    """Carry on what removals left marked in ``repo``: those waiting for what used them, and those
    a crash or a killed worker stopped half-way. A manifest listed by another marked one waits
    for it (parents go first)."""
    db, repo_id = services.db, content.repo_id_of(repo)
    removed = Removed()
    done: set[str] = set()
    while True:
        pending = [a["digest"] for a in db.repo_manifests.find({"repo_id": repo_id, REMOVING: MARKED},
                                                                 {"digest": 1}) if a["digest"] not in done]
        pending_set = set(pending)
        ready = [digest for digest in pending if not pending_set.intersection(parents_of(db, repo_id, digest))]
        if not ready:
            break
        for digest in ready:
            done.add(digest)
            _remove_marked_manifest(db, repo_id, digest, removed)
    for association in list(db.repo_blobs.find({"repo_id": repo_id, REMOVING: MARKED}, {"digest": 1})):
        _remove_marked_blob(db, repo_id, association["digest"], removed)
    return removed


# --- what callers use ------------------------------------------------------------------


def _visible_tag(db: Collections, repo_id: str, tag: str) -> str:
    """The digest ``tag`` names, or ``ManifestUnknown``."""
    oci.validate_tag(tag)
    found = db.tags.find_one({"repo_id": repo_id, "name": tag})
    if found is None:
        raise ManifestUnknown(f"tag {tag} is unknown to the repository", detail={"Tag": tag})
    return found["manifest_digest"]


def _known_manifest(db: Collections, repo_id: str, digest: str) -> None:
    """``digest`` is a manifest the registry serves from the repository, or one a removal that
    stopped half-way was taking out (asking again finishes it); else ``ManifestUnknown``."""
    oci.validate_digest(digest)
    if content.resolve_reference(db, repo_id, digest) is None and db.repo_manifests.find_one(
            {"repo_id": repo_id, "digest": digest, REMOVING: REMOVE_MARK}, {"_id": 1}) is None:
        raise ManifestUnknown(f"manifest {digest} is unknown to the repository", detail={"Digest": digest})


def _finish(services: Any, repo_id: str, removed: Removed, details: dict[str, Any]) -> dict[str, Any]:
    """Record the removal in the repository's history and have the repository published again."""
    if removed:
        history.record(services.db, repo_id, "remove", {
            **details, "tags": removed.tags, "manifests": removed.manifests,
            "referrers": removed.referrers, "blobs": len(removed.blobs)})
    return {"tags": removed.tags, "manifests": removed.manifests, "referrers": removed.referrers,
            "publish_task": content.request_publish(services, repo_id)}


def remove_content(services: Any, repo: dict[str, Any], tags: Iterable[str] = (),
                   digests: Iterable[str] = ()) -> dict[str, Any]:
    """Remove ``tags`` (the manifests they name stay) and manifests ``digests`` (with their tags,
    their referrers and the children and blobs nothing else uses). All are checked first: an
    unknown one (``ManifestUnknown``) removes nothing new; what removals that stopped half-way
    left pending is finished either way, so running a stopped removal again finishes it.

    Returns ``{"tags", "manifests", "referrers", "publish_task"}``. A manifest an index still
    lists is in ``manifests`` too: hidden at once, its association goes with the index.
    """
    db, repo_id = services.db, repo["_id"]
    tags, digests = list(dict.fromkeys(tags)), list(dict.fromkeys(digests))
    try:
        tag_targets = {tag: _visible_tag(db, repo_id, tag) for tag in tags}
        for digest in digests:
            _known_manifest(db, repo_id, digest)
    except RegistryError:
        resumed = finish_pending_removals(services, repo_id)  # what a removal stopped half-way left
        if resumed:
            _finish(services, repo_id, resumed, {"resumed": True})
        raise
    removed = Removed()
    for tag, digest in tag_targets.items():
        _delete_tag(db, repo_id, tag, digest, removed)
    for digest in digests:
        _mark(db.repo_manifests, repo_id, digest, REMOVE_MARK)
    for digest in digests:
        _remove_marked_manifest(db, repo_id, digest, removed)
    removed.add(finish_pending_removals(services, repo_id))
    waiting = [digest for digest in digests if digest not in removed.manifests + removed.referrers
               and db.repo_manifests.find_one({"repo_id": repo_id, "digest": digest, REMOVING: REMOVE_MARK})]
    removed.manifests += waiting
    return _finish(services, repo_id, removed, {"requested_tags": tags, "requested_digests": digests})


def remove_tag(services: Any, repo: dict[str, Any], tag: str) -> dict[str, Any]:
    """Remove ``tag``; the manifest it named stays (pull it by digest)."""
    return remove_content(services, repo, tags=[tag])


def remove_manifest(services: Any, repo: dict[str, Any], digest: str) -> dict[str, Any]:
    """Remove manifest ``digest`` with its tags, its referrers and the children and blobs nothing else uses."""
    return remove_content(services, repo, digests=[digest])


def unlink_blob(services: Any, repo: dict[str, Any], digest: str) -> dict[str, Any]:
    """Take blob ``digest`` out of ``repo``; its file stays for orphan clean-up.

    The registry answers 404 for it at once. While a manifest of the repository needs it,
    the association waits (marked) and goes with the last such manifest: no manifest the
    repository holds is ever left without its blob. Returns ``{"blobs", "waiting", "publish_task"}``.
    """
    db, repo_id = services.db, repo["_id"]
    oci.validate_digest(digest)
    if content.repo_blob(db, repo_id, digest) is None or not _mark(db.repo_blobs, repo_id, digest, REMOVE_MARK):
        raise BlobUnknown(f"blob {digest} is unknown to repository {repo['name']}", detail={"digest": digest})
    removed = Removed()
    gone = _remove_marked_blob(db, repo_id, digest, removed)
    history.record(db, repo_id, "remove", {"blob": digest, "waiting": not gone})
    return {"blobs": removed.blobs, "waiting": not gone,
            "publish_task": content.request_publish(services, repo_id) if gone else None}
