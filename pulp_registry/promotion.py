"""Copy (promote) images from one repository to another: associations only, tags last.

Blobs and manifests are content-addressed and stored once, so a copy writes
no content: it associates with the target what the selected images need (their
blobs, the children of a list or index, and the referrers -- signatures,
SBOMs -- the source holds for them), then points the tags. Associations go
before what names them (blobs, child manifests, manifests, referrers, tags), so
a copy stopped anywhere leaves at worst unnamed associations, never a tag
pointing at something the target lacks. The target is then published.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from pulp_registry import content, history, oci
# One way to write an association (content owns it): ``keep`` clears a pending removal's mark, as a push does.
from pulp_registry.content import PARTIAL, _upsert_association
from pulp_registry.db import Collections, utcnow
from pulp_registry.registry_errors import RegistryError
from pulp_registry.repositories import being_deleted, require_repository
from pulp_registry.tasks import Progress


#: Depth of indexes in indexes a copy follows (a malformed graph never loops).
MAX_DEPTH = 8
_QUERY_BATCH = 1000


class CopyError(ValueError):
    """A copy that cannot be done as asked; ``field`` names the input at fault. Nothing was written."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class CopyPlan:
    """What a copy writes, in the order it writes it."""

    #: Target tag name -> manifest digest.
    tags: dict[str, str]
    #: Digest -> (size) of every blob needed.
    blobs: dict[str, int] = field(default_factory=dict)
    #: Manifests in write order (children before the lists naming them): digest -> association fields.
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Referrers in write order (after their subjects): digest -> association fields.
    referrers: dict[str, dict[str, Any]] = field(default_factory=dict)


# --- what to copy -------------------------------------------------------------------------


def _string_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or \
            not all(isinstance(item, str) for item in value):
        raise CopyError(name, f"{name} must be a list of strings")
    return list(value)


def select_manifests(db: Collections, source: Mapping[str, Any], tags: Iterable[str] = (),
                     digests: Iterable[str] = (), tag_pattern: str | None = None,
                     target_tag: str | None = None) -> dict[str, str]:
    """The manifests asked for, as ``{reference in the target: digest}``.

    A reference that is a tag name is tagged in the target; a digest reference is
    copied untagged. Raises ``CopyError`` naming the first tag or digest the source
    does not hold, or the option at fault, so a bad request writes nothing.
    """
    tags, digests = _string_list(tags, "tags"), _string_list(digests, "digests")
    if tag_pattern is not None and (not isinstance(tag_pattern, str) or not tag_pattern):
        raise CopyError("tag_pattern", "tag_pattern must be a non-empty glob such as 'v1.*'")
    if not tags and not digests and tag_pattern is None:
        raise CopyError("tags", "name what to copy: tags, digests or a tag_pattern")
    if target_tag is not None:
        if tag_pattern is not None or len(tags) + len(digests) != 1:
            raise CopyError("target_tag", "target_tag needs exactly one tag or one digest to copy")
        _check_tag(target_tag, "target_tag")
    source_id = source["_id"]
    selected: dict[str, str] = {}
    for tag in tags:
        _check_tag(tag, "tags")
        found = db.tags.find_one({"repo_id": source_id, "name": tag})
        if found is None:
            raise CopyError("tags", f"repository {source['name']} has no tag {tag!r}")
        selected[target_tag or tag] = found["manifest_digest"]
    if tag_pattern is not None:
        matched = [tag for tag in content.tag_names(db, source_id) if fnmatch.fnmatchcase(tag, tag_pattern)]
        if not matched:
            raise CopyError("tag_pattern", f"no tag of repository {source['name']} matches {tag_pattern!r}")
        for found in db.tags.find({"repo_id": source_id, "name": {"$in": matched}}):
            selected[found["name"]] = found["manifest_digest"]
    for digest in digests:
        try:
            oci.validate_digest(digest)
        except RegistryError:
            raise CopyError("digests", f"invalid digest {digest!r}") from None
        if db.repo_manifests.find_one({"repo_id": source_id, "digest": digest}, {"_id": 1}) is None:
            raise CopyError("digests", f"repository {source['name']} has no manifest {digest}")
        selected[target_tag or digest] = digest
    return selected


def _check_tag(tag: Any, name: str) -> None:
    try:
        oci.validate_tag(tag)
    except (RegistryError, TypeError):
        raise CopyError(name, f"invalid tag {tag!r}") from None


def _find_by_id(collection: Any, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), _QUERY_BATCH):
        for document in collection.find({"_id": {"$in": ids[start:start + _QUERY_BATCH]}}):
            found[document["_id"]] = document
    return found


def _source_associations(db: Collections, source_id: str, digests: Iterable[str],
                         kept_only: bool = False) -> dict[str, dict[str, Any]]:
    """The source's associations of ``digests``; ``kept_only`` leaves out those a removal is taking away."""
    digests = sorted(set(digests))
    found: dict[str, dict[str, Any]] = {}
    query: dict[str, Any] = {"repo_id": source_id}
    if kept_only:
        query["removing"] = {"$exists": False}
    for start in range(0, len(digests), _QUERY_BATCH):
        for association in db.repo_manifests.find({**query, "digest": {"$in": digests[start:start + _QUERY_BATCH]}}):
            found[association["digest"]] = association
    return found


def _association_fields(digest: str, unit: Mapping[str, Any], held: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    association = held.get(digest) or {}
    fields = {"media_type": association.get("media_type") or unit.get("media_type"),
              "size": association.get("size", unit.get("size"))}
    if association.get(PARTIAL):
        fields[PARTIAL] = True  # the target holds the same children only
    return fields


def _with_children(db: Collections, source: Mapping[str, Any], roots: list[str],
                   units: dict[str, dict[str, Any]], order: dict[str, None],
                   planned: Mapping[str, None] | None = None) -> None:
    """Add ``roots`` and their children (deepest first) to ``order``, reading their units into ``units``.

    Digests already in ``planned`` (written in an earlier step) are not added again.
    """
    planned = planned or {}

    def visit(digest: str, depth: int) -> None:
        if digest in order or digest in planned:
            return
        unit = units.get(digest)
        if unit is None:
            raise CopyError(None, f"manifest {digest} of repository {source['name']} is not stored; "
                                  "it cannot be copied")
        if depth < MAX_DEPTH:
            children = [child["digest"] for child in unit.get("children") or []]
            if children and _source_associations(db, source["_id"], [digest]).get(digest, {}).get(PARTIAL):
                # A list synced for some platforms: the source holds only some children, and so will the target.
                children = list(_source_associations(db, source["_id"], children))
            units.update(_find_by_id(db.manifests, [child for child in children if child not in units]))
            for child in children:
                visit(child, depth + 1)
        order[digest] = None

    units.update(_find_by_id(db.manifests, [root for root in roots if root not in units]))
    for root in roots:
        visit(root, 0)


def plan_copy(db: Collections, source: Mapping[str, Any], selected: Mapping[str, str]) -> CopyPlan:
    """Everything the selected manifests need, read before anything is written."""
    source_id = source["_id"]
    units: dict[str, dict[str, Any]] = {}
    manifest_order: dict[str, None] = {}
    _with_children(db, source, list(dict.fromkeys(selected.values())), units, manifest_order)

    # Referrers the source holds for anything copied, and theirs in turn (a signature of an SBOM).
    referrer_order: dict[str, None] = {}
    subjects = list(manifest_order)
    while subjects:
        candidates = [unit["_id"] for start in range(0, len(subjects), _QUERY_BATCH)
                      for unit in db.manifests.find({"subject": {"$in": subjects[start:start + _QUERY_BATCH]}},
                                                    {"_id": 1})]
        found = [digest for digest in _source_associations(db, source_id, candidates, kept_only=True)
                 if digest not in manifest_order and digest not in referrer_order]
        before = set(referrer_order)
        _with_children(db, source, sorted(found), units, referrer_order, planned=manifest_order)
        subjects = [digest for digest in referrer_order if digest not in before]

    all_manifests = list(manifest_order) + list(referrer_order)
    held = _source_associations(db, source_id, all_manifests)
    blob_digests = {blob for digest in all_manifests for blob in units[digest].get("blob_digests") or []}
    blob_units = _find_by_id(db.blobs, blob_digests)
    missing = sorted(blob_digests - blob_units.keys())
    if missing:
        raise CopyError(None, f"blob {missing[0]} of repository {source['name']} is not stored; "
                              "it cannot be copied")
    return CopyPlan(
        tags={reference: digest for reference, digest in selected.items() if not oci.is_digest(reference)},
        blobs={digest: int(blob_units[digest].get("size") or 0) for digest in sorted(blob_digests)},
        manifests={digest: _association_fields(digest, units[digest], held) for digest in manifest_order},
        referrers={digest: _association_fields(digest, units[digest], held) for digest in referrer_order},
    )


# --- the copy ------------------------------------------------------------------------------


def _live_repository(db: Collections, repo_id: str, field: str) -> dict[str, Any]:
    """The repository, unless it is being deleted (a copy from it would be partial, to it lost)."""
    repo = require_repository(db, repo_id)
    refusal = being_deleted(repo)
    if refusal:
        raise CopyError(field, refusal.split(";")[0])
    return repo


def copy_images(services: Any, progress: Progress, *, source_repo_id: str, target_repo_id: str,
                tags: Iterable[str] = (), digests: Iterable[str] = (), tag_pattern: str | None = None,
                target_tag: str | None = None) -> dict[str, Any]:
    """The work of the ``copy`` task: associate the selected images with the target, tag them, publish it.

    Everything is validated and read before the first write; ``progress`` is called
    between associations (safe points: a stop there leaves no tag naming a missing unit).
    """
    db: Collections = services.db
    source = _live_repository(db, source_repo_id, "source")
    target = _live_repository(db, target_repo_id, "target")
    selected = select_manifests(db, source, tags, digests, tag_pattern, target_tag)
    plan = plan_copy(db, source, selected)

    def associate(step: str, units: Mapping[str, Any], write: Callable[[str, Any], None]) -> None:
        total = len(units)
        for done, (digest, unit) in enumerate(units.items(), 1):
            write(digest, unit)
            progress({"step": step, "done": done, "total": total})
        if not total:
            progress({"step": step, "done": 0, "total": 0})

    def add_blob(digest: str, size: int) -> None:
        _upsert_association(db.repo_blobs, {"repo_id": target_repo_id, "digest": digest},
                            {"size": size, "added": utcnow()}, keep=True)

    def add_manifest(digest: str, fields: dict[str, Any]) -> None:
        _upsert_association(db.repo_manifests, {"repo_id": target_repo_id, "digest": digest},
                            {**fields, "added": utcnow()}, keep=True)

    associate("blobs", plan.blobs, add_blob)
    associate("manifests", plan.manifests, add_manifest)
    associate("referrers", plan.referrers, add_manifest)
    associate("tags", plan.tags, lambda tag, digest: content.set_tag(db, target_repo_id, tag, digest))

    result: dict[str, Any] = {"source": source["name"], "target": target["name"], "tags": sorted(plan.tags),
                              "manifests": len(plan.manifests), "blobs": len(plan.blobs),
                              "referrers": len(plan.referrers)}
    history.record(db, target_repo_id, "copy", {**result, "source_repo_id": source_repo_id})
    publish_task = content.request_publish(services, target_repo_id)
    result["publish_task"] = publish_task["_id"] if publish_task else None
    return result
