"""Repositories: create, find, update and delete them, and what they hold (images, tags, counts).

Plain functions on ``db.Collections`` (or ``Services`` where storage or the
published tree is touched), called by the REST API views, the push endpoints
and the workers alike. A repository has an id (``my-app``, used in admin URLs)
and a registry name (``my/app``, used by ``docker pull``); both are unique.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from pymongo import ReturnDocument

from pulp_registry import feeds, history, oci
from pulp_registry.db import Collections, DuplicateKeyError, isoformat, utcnow
from pulp_registry.registry_errors import Denied, RegistryError
from pulp_registry.tasks import Progress

REPO_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
#: Fields of a repository an update may change (``name`` is immutable: pulls would break).
UPDATABLE_FIELDS = ("description", "notes", "protected", "feed")
#: Notes live in the repository document (a list of pairs): a few hundred keys at most, not a growing list.
MAX_NOTES = 200


class RepositoryError(ValueError):
    """A request about a repository that cannot be done; ``field`` names the input at fault."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class RepositoryExists(RepositoryError):
    """The id or the registry name is already taken."""


class RepositoryNotFound(RepositoryError):
    def __init__(self, repo_id: str) -> None:
        super().__init__(None, f"repository {repo_id!r} does not exist")
        self.repo_id = repo_id


# --- validation -------------------------------------------------------------------


def validate_repo_name(name: Any) -> str:
    try:
        return oci.validate_name(name)
    except RegistryError as exc:
        raise RepositoryError("name", exc.message) from None


def validate_repo_id(repo_id: Any) -> str:
    if not isinstance(repo_id, str) or not REPO_ID_RE.match(repo_id):
        raise RepositoryError("id", f"invalid repository id {repo_id!r}: 1-255 of letters, digits, '_', '.', '-'")
    return repo_id


def validate_description(description: Any) -> str:
    if not isinstance(description, str):
        raise RepositoryError("description", "description must be a string")
    return description


def validate_protected(protected: Any) -> bool:
    if not isinstance(protected, bool):
        raise RepositoryError("protected", "protected must be true or false")
    return protected


def validate_notes(notes: Any, allow_none_values: bool = False) -> dict[str, str | None]:
    """Notes are a flat object of strings; in an update a ``null`` value removes the key."""
    if not isinstance(notes, Mapping):
        raise RepositoryError("notes", "notes must be an object of string keys and string values")
    for key, value in notes.items():
        if not isinstance(key, str) or not key:
            raise RepositoryError("notes", "note keys must be non-empty strings")
        if value is None and allow_none_values:
            continue
        if not isinstance(value, str):
            raise RepositoryError("notes", f"note {key!r} must have a string value")
    if len(notes) > MAX_NOTES:
        raise RepositoryError("notes", f"a repository holds at most {MAX_NOTES} notes")
    return dict(notes)


# --- create and find ----------------------------------------------------------------


def default_repo_id(db: Collections, name: str) -> str:
    """``my/app`` -> ``my-app``; if that id is taken, ``my-app-2``, ``my-app-3``, ..."""
    base = name.replace("/", "-")
    candidate, number = base, 1
    while db.repositories.find_one({"_id": candidate}, {"_id": 1}) is not None:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def create_repository(db: Collections, name: str, repo_id: str | None = None, description: str = "",
                      notes: Mapping[str, str] | None = None, protected: bool = False, *,
                      user: str | None = None, feed: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Insert a repository; raise ``RepositoryError`` for bad input, ``RepositoryExists`` for a taken id or name.

    ``user`` is who asked, for the history (default: the API caller or the task's user). ``feed``:
    the upstream it syncs from (``feeds.validate_feed``); its credentials are stored once it exists.
    """
    name = validate_repo_name(name)
    if repo_id is not None:
        validate_repo_id(repo_id)
    validate_description(description)
    note_pairs = [[key, value] for key, value in validate_notes(notes or {}).items()]
    validate_protected(protected)
    now = utcnow()
    feed_change = None
    if feed is not None:
        try:
            feed_change = feeds.merge_feed(None, feed, repository_name=name, now=now)
        except feeds.FeedError as exc:
            raise RepositoryError(exc.field, exc.message) from None
    if find_repository_by_name(db, name) is not None:
        raise RepositoryExists("name", f"a repository named {name!r} already exists")
    if repo_id is not None and get_repository(db, repo_id) is not None:
        raise RepositoryExists("id", f"a repository with id {repo_id!r} already exists")
    repo = {"_id": repo_id or default_repo_id(db, name), "name": name, "description": description,
            "notes": note_pairs, "protected": protected, "created": now, "updated": now,
            "last_published": None}
    if feed_change is not None:
        repo.update(feed=feed_change.feed, next_sync=feed_change.next_sync)
    try:
        db.repositories.insert_one(repo)
    except DuplicateKeyError:
        # Lost a race with another request: say which key was taken.
        if find_repository_by_name(db, name) is not None:
            raise RepositoryExists("name", f"a repository named {name!r} already exists") from None
        raise RepositoryExists("id", f"a repository with id {repo['_id']!r} already exists") from None
    if feed_change is not None:
        feeds.store_credentials(db, repo["_id"], feed_change)  # only now: the id is surely this repository's
    history.record(db, repo["_id"], "create", {"name": name}, user=user)
    return repo


def being_deleted(repo: Mapping[str, Any]) -> str | None:
    """Why ``repo`` takes nothing new, if it is marked ``deleting`` (what was written now would outlive it)."""
    if repo.get("deleting"):
        return f"repository {repo['name']} is being deleted; push again when it is gone"
    return None


def ensure_repository(db: Collections, name: str) -> dict[str, Any]:
    """The repository named ``name``, created on first push; safe when two pushes race.

    A repository marked ``deleting`` refuses the push with the registry's ``DENIED`` (it would be lost).
    """
    for _attempt in range(20):
        repo = find_repository_by_name(db, name)
        if repo is not None:
            refusal = being_deleted(repo)
            if refusal:
                raise Denied(refusal, detail={"name": name})
            return repo
        try:
            return create_repository(db, name)
        except RepositoryExists:
            continue  # someone created it (or took the default id) meanwhile: look again
    raise RepositoryError(None, f"could not create repository {name!r}: too many concurrent creations")


def get_repository(db: Collections, repo_id: str) -> dict[str, Any] | None:
    return db.repositories.find_one({"_id": repo_id})


def find_repository_by_name(db: Collections, name: str) -> dict[str, Any] | None:
    return db.repositories.find_one({"name": name})


def require_repository(db: Collections, repo_id: str) -> dict[str, Any]:
    if (repo := get_repository(db, repo_id)) is None:
        raise RepositoryNotFound(repo_id)
    return repo


def list_repositories(db: Collections, name: str | None = None) -> list[dict[str, Any]]:
    query = {"name": name} if name is not None else {}
    return list(db.repositories.find(query).sort("_id", 1))


# --- update and delete ------------------------------------------------------------


#: Attempts of a notes update whose repository kept changing under it (each attempt lost a race).
_NOTES_UPDATE_ATTEMPTS = 50


def _merged_notes(stored: Any, delta_notes: Mapping[str, str | None]) -> list[list[str]]:
    """Stored note pairs with ``delta_notes`` applied (a ``None`` value removes the key)."""
    merged = dict(stored or [])
    for key, value in delta_notes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return [[key, value] for key, value in merged.items()]


def update_repository(db: Collections, repo_id: str, delta: Mapping[str, Any], *,
                      user: str | None = None) -> tuple[dict[str, Any], bool]:
    """Apply ``delta`` (description, notes, protected, feed); return the repository and whether ``protected`` changed.

    Notes are merged key by key like Pulp 2's: a ``null`` value removes the key. They are stored as
    pairs (user keys never become field names), so the merge is a read then a write conditioned on
    the notes read: a concurrent change of another note makes it read again, never lost. The feed is
    merged the same way (``feeds.merge_feed``; ``null`` removes it), its credentials written after it.
    """
    from pulp_registry.locks import PROCESS_GUARD

    repo = require_repository(db, repo_id)
    if not isinstance(delta, Mapping):
        raise RepositoryError("delta", "delta must be an object")
    for key in delta:
        if key == "name":
            if delta["name"] != repo["name"]:
                raise RepositoryError("delta.name", "a repository's name cannot change (pulls use it); "
                                                    "create a new repository instead")
        elif key not in UPDATABLE_FIELDS:
            raise RepositoryError(f"delta.{key}", f"unknown field {key!r}; updatable: {', '.join(UPDATABLE_FIELDS)}")
    changes: dict[str, Any] = {}
    delta_notes: dict[str, str | None] | None = None
    try:
        if "description" in delta:
            changes["description"] = validate_description(delta["description"])
        if "protected" in delta:
            changes["protected"] = validate_protected(delta["protected"])
        if "notes" in delta:
            delta_notes = validate_notes(delta["notes"], allow_none_values=True)
        feed_change = _feed_change(repo, delta)  # checked before anything is written
    except (RepositoryError, feeds.FeedError) as exc:
        raise RepositoryError(f"delta.{exc.field}", exc.message) from None
    if not changes and delta_notes is None and feed_change is None:
        return repo, False
    for attempt in range(_NOTES_UPDATE_ATTEMPTS):
        # mongomock applies a conditional update in several Python steps: serialize it (and the
        # read a retry needs) within the process; across processes the condition does the work.
        with PROCESS_GUARD:
            if attempt:
                repo = require_repository(db, repo_id)  # the notes changed meanwhile: merge into what is there now
            query: dict[str, Any] = {"_id": repo_id}
            update = {**changes, "updated": utcnow()}
            if delta_notes is not None:
                query["notes"] = repo.get("notes")
                update["notes"] = _merged_notes(repo.get("notes"), delta_notes)
                if len(update["notes"]) > MAX_NOTES:
                    raise RepositoryError("delta.notes", f"a repository holds at most {MAX_NOTES} notes")
            if feed_change is not None:
                if attempt:
                    feed_change = _feed_change(repo, delta)
                query["feed"] = repo.get("feed")
                update["feed"] = feed_change.feed
                if feed_change.set_next_sync:
                    update["next_sync"] = feed_change.next_sync
            # Compare with the document as it was just before this write, not as read above: a concurrent
            # update of ``protected`` must not hide the change from the caller (who then republishes).
            before = db.repositories.find_one_and_update(query, {"$set": update},
                                                         return_document=ReturnDocument.BEFORE)
        if before is not None:
            if feed_change is not None:
                feeds.store_credentials(db, repo_id, feed_change)
            protected_changed = "protected" in update and update["protected"] != before.get("protected", False)
            # Field names only: notes' values (and keys) are the user's, the history says what changed.
            fields = sorted(set(changes) | ({"notes"} if delta_notes is not None else set())
                            | ({"feed"} if feed_change is not None else set()))
            history.record(db, repo_id, "update", {"fields": fields}, user=user)
            return {**before, **update}, protected_changed
    raise RepositoryError("delta.notes" if delta_notes is not None else "delta.feed",
                          f"repository {repo_id!r} kept changing; try again")


def _feed_change(repo: Mapping[str, Any], delta: Mapping[str, Any]) -> feeds.FeedChange | None:
    """What ``delta["feed"]`` does to the feed ``repo`` has (None when the delta leaves the feed alone)."""
    if "feed" not in delta:
        return None
    return feeds.merge_feed(repo.get("feed"), delta["feed"], repository_name=repo["name"], now=utcnow())


def mark_deleting(db: Collections, repo_id: str) -> dict[str, Any]:
    """Mark the repository ``deleting`` (kept if a removal that stopped half-way marked it) and return it.

    One conditional write: from here on pushes to it are refused and publishes skip it.
    """
    db.repositories.update_one({"_id": repo_id, "deleting": None}, {"$set": {"deleting": utcnow()}})
    return require_repository(db, repo_id)


def _cancel_uploads(services: Any, repo: Mapping[str, Any]) -> int:
    """End the repository's upload sessions (their files first, then their documents)."""
    db: Collections = services.db
    upload_query = {"$or": [{"repo_id": repo["_id"]}, {"repo_id": None, "repo_name": repo["name"]}]}
    upload_ids = [upload["_id"] for upload in db.uploads.find(upload_query, {"_id": 1})]
    for upload_id in upload_ids:
        try:
            services.storage.upload_cancel(upload_id)
        except Exception:  # noqa: BLE001 - a session file already gone is fine
            pass
    return db.uploads.delete_many({"_id": {"$in": upload_ids}}).deleted_count if upload_ids else 0


def _unpublish(services: Any, repo: Mapping[str, Any]) -> None:
    from pulp_registry.publish import unpublish_repository

    unpublish_repository(services.settings, repo["name"])


def _delete_associations(collection_name: str) -> Callable[[Any, Mapping[str, Any]], int]:
    def delete(services: Any, repo: Mapping[str, Any]) -> int:
        return getattr(services.db, collection_name).delete_many({"repo_id": repo["_id"]}).deleted_count
    return delete


#: The steps of a removal after the ``deleting`` mark, top-down: nothing a step leaves is named by
#: what a later step removes (tags go before the manifests they point at), and each is idempotent.
DELETE_STEPS: tuple[tuple[str, Callable[[Any, Mapping[str, Any]], Any]], ...] = (
    ("unpublish", _unpublish),                    # Crane forgets the repository at once
    ("tags", _delete_associations("tags")),
    ("manifests", _delete_associations("repo_manifests")),
    ("blobs", _delete_associations("repo_blobs")),
    ("uploads", _cancel_uploads),
    ("history", lambda services, repo: history.forget_repository(services.db, repo["_id"])),
)


def delete_repository(services: Any, repo_id: str,
                      progress: Progress | None = None) -> dict[str, Any]:
    """The work of the ``delete_repository`` task: remove the repository top-down, restartably.

    Mark it ``deleting`` (pushes are refused, publishes skip it), unpublish it, then drop
    its tags, manifest associations, blob associations, upload sessions and history
    (``DELETE_STEPS``), and the repository document last. A removal interrupted anywhere
    leaves orphans at worst, never a tag naming a manifest the repository lacks, and the
    repository stays listed (``deleting``) so that deleting it again finishes the work.
    Content units (blobs, manifests and their files) stay: other repositories may hold
    them, and orphan clean-up removes what nobody holds.
    """
    db: Collections = services.db
    repo = mark_deleting(db, repo_id)
    removed: dict[str, int] = {}
    for done, (step, remove) in enumerate(DELETE_STEPS, 1):
        count = remove(services, repo)
        if step in ("tags", "manifests", "blobs", "uploads"):
            removed[step] = count
        if progress is not None:
            progress({"step": "delete", "done": done, "total": len(DELETE_STEPS), "description": step})
    feeds.forget_credentials(db, repo_id)  # before the document: a rerun after a crash still finds the repository
    db.repositories.delete_one({"_id": repo_id})
    return {"repo_id": repo_id, "name": repo["name"], "removed": removed}


# --- what a repository holds ------------------------------------------------------


def _count_and_size(collection: Any, repo_id: str) -> tuple[int, int]:
    pipeline = [{"$match": {"repo_id": repo_id}},
                {"$group": {"_id": None, "count": {"$sum": 1}, "size": {"$sum": "$size"}}}]
    for group in collection.aggregate(pipeline):
        return int(group["count"]), int(group["size"] or 0)
    return 0, 0


def repository_counts(db: Collections, repo_id: str) -> dict[str, int]:
    """Tags, manifests and blobs held, and their total size in bytes (each unit once)."""
    manifest_count, manifest_size = _count_and_size(db.repo_manifests, repo_id)
    blob_count, blob_size = _count_and_size(db.repo_blobs, repo_id)
    return {"tag_count": db.tags.count_documents({"repo_id": repo_id}), "manifest_count": manifest_count,
            "blob_count": blob_count, "total_size": manifest_size + blob_size}


class SizeCalculator:
    """Sizes of images as users think of them: manifest bytes plus every blob, children for a list."""

    def __init__(self, db: Collections, digests: Iterable[str]) -> None:
        self.db = db
        self.manifests: dict[str, dict[str, Any]] = {}
        self.blob_sizes: dict[str, int] = {}
        self._load(list(digests))

    def _load(self, digests: list[str]) -> None:
        missing = [digest for digest in digests if digest not in self.manifests]
        if not missing:
            return
        docs = list(self.db.manifests.find({"_id": {"$in": missing}}))
        for doc in docs:
            self.manifests[doc["_id"]] = doc
        blob_digests = {digest for doc in docs for digest in doc.get("blob_digests") or []} - set(self.blob_sizes)
        if blob_digests:
            for blob in self.db.blobs.find({"_id": {"$in": list(blob_digests)}}, {"size": 1}):
                self.blob_sizes[blob["_id"]] = int(blob.get("size") or 0)
        children = [child["digest"] for doc in docs for child in doc.get("children") or []]
        if children:
            self._load(children)

    def size(self, digest: str, fallback: int = 0, _depth: int = 0) -> int:
        doc = self.manifests.get(digest)
        if doc is None:
            return fallback
        total = int(doc.get("size") or 0)
        total += sum(self.blob_sizes.get(blob, 0) for blob in doc.get("blob_digests") or [])
        if _depth < 4:  # an index may nest indexes; never loop on a malformed graph
            total += sum(self.size(child["digest"], int(child.get("size") or 0), _depth + 1)
                         for child in doc.get("children") or [])
        return total


def platform_string(platform: Any) -> str | None:
    """``{"os": "linux", "architecture": "arm64", "variant": "v8"}`` -> ``linux/arm64/v8``."""
    if not isinstance(platform, Mapping):
        return None
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(part) for part in parts if part) or None


def list_images(db: Collections, repo_id: str) -> list[dict[str, Any]]:
    """The manifests a repository holds, newest first, with their tags, total size and platforms."""
    from pulp_registry.content import child_platform

    # ObjectIds grow with insertion: they order two pushes within the same millisecond.
    associations = list(db.repo_manifests.find({"repo_id": repo_id}).sort([("added", -1), ("_id", -1)]))
    sizes = SizeCalculator(db, [association["digest"] for association in associations])
    tags_by_digest: dict[str, list[str]] = {}
    for tag in db.tags.find({"repo_id": repo_id}, {"name": 1, "manifest_digest": 1}).sort("name", 1):
        tags_by_digest.setdefault(tag["manifest_digest"], []).append(tag["name"])
    images = []
    for association in associations:
        digest = association["digest"]
        doc = sizes.manifests.get(digest, {})
        platforms = [platform_string(child_platform(child)) for child in doc.get("children") or []]
        images.append({
            "digest": digest,
            "media_type": association.get("media_type") or doc.get("media_type"),
            "size": sizes.size(digest, int(association.get("size") or 0)),
            "tags": tags_by_digest.get(digest, []),
            "pushed": isoformat(association.get("added")),
            "platforms": [platform for platform in platforms if platform],
        })
    return images


def tag_json(tag: dict[str, Any], sizes: SizeCalculator, media_types: Mapping[str, str]) -> dict[str, Any]:
    digest = tag["manifest_digest"]
    media_type = media_types.get(digest) or sizes.manifests.get(digest, {}).get("media_type")
    return {"name": tag["name"], "manifest_digest": digest, "media_type": media_type,
            "size": sizes.size(digest), "updated": isoformat(tag.get("updated"))}


def list_tags(db: Collections, repo_id: str) -> list[dict[str, Any]]:
    """Tags sorted by name, each with its manifest's digest, media type and total size."""
    tags = list(db.tags.find({"repo_id": repo_id}).sort("name", 1))
    digests = list({tag["manifest_digest"] for tag in tags})
    media_types = {association["digest"]: association.get("media_type") for association in
                   db.repo_manifests.find({"repo_id": repo_id, "digest": {"$in": digests}}, {"digest": 1, "media_type": 1})}
    sizes = SizeCalculator(db, digests)
    return [tag_json(tag, sizes, media_types) for tag in tags]


def get_tag(db: Collections, repo_id: str, name: str) -> dict[str, Any] | None:
    tag = db.tags.find_one({"repo_id": repo_id, "name": name})
    if tag is None:
        return None
    association = db.repo_manifests.find_one({"repo_id": repo_id, "digest": tag["manifest_digest"]}) or {}
    media_types = {tag["manifest_digest"]: association.get("media_type")}
    return tag_json(tag, SizeCalculator(db, [tag["manifest_digest"]]), media_types)


# --- JSON -------------------------------------------------------------------------


def repository_href(repo_id: str) -> str:
    return f"/pulp/api/v2/repositories/{repo_id}/"


def repository_json(repo: dict[str, Any], counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    """A repository as the admin API shows it (notes as an object, times in ISO 8601)."""
    body = {
        "id": repo["_id"],
        "name": repo["name"],
        "description": repo.get("description", ""),
        "notes": {key: value for key, value in repo.get("notes") or []},
        "protected": bool(repo.get("protected", False)),
        "created": isoformat(repo.get("created")),
        "updated": isoformat(repo.get("updated")),
        "last_published": isoformat(repo.get("last_published")),
        "deleting": bool(repo.get("deleting")),
        "feed": feeds.feed_json(feeds.feed_from_document(repo)),
        "next_sync": isoformat(repo.get("next_sync")) if repo.get("feed") else None,
        "_href": repository_href(repo["_id"]),
    }
    if counts is not None:
        body.update(counts)
    return body
