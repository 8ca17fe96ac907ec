"""What a sync has to do, read before anything is written: tags, manifests, blobs, referrers.

Planning reads the upstream (tag list, manifests) and the repository, and
stores nothing, so a dry run is the plan itself. Manifests the content store
holds already are read from it rather than fetched again (their bytes were
verified when stored); only blobs the store lacks are to be downloaded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pulp_registry import content, feeds, oci
from pulp_registry.registry_errors import RegistryError
from pulp_registry.sync.upstream import Fetched, UpstreamClient, UpstreamError
from pulp_registry.tasks import Progress

#: Tags of the OCI referrers fallback and of cosign (``sha256-<hex>``, ``sha256-<hex>.sig``): they
#: come along with the manifest they are about (``feed.referrers``), not as tags of their own.
REFERRER_TAG_RE = re.compile(r"^sha(256|512)-[0-9a-f]{64,128}(\.[a-z]+)?$")
#: How deep lists nest and referrers refer to referrers before we stop following.
MAX_DEPTH = 4


@dataclass
class PlannedManifest:
    """A manifest the repository is to hold: its exact bytes, parsed, and whether it was fetched."""

    raw: bytes
    manifest: oci.Manifest
    #: A list or index some of whose children are left out by the platform filter.
    partial: bool = False
    #: Already associated with the repository (nothing to write).
    held: bool = False


@dataclass
class SyncPlan:
    #: Tag -> digest it is to point at, in upstream order (referrer tags included).
    tags: dict[str, str] = field(default_factory=dict)
    #: Manifests by digest, children before the lists that name them, subjects before referrers.
    manifests: dict[str, PlannedManifest] = field(default_factory=dict)
    #: Blob digest -> size: every blob the manifests need.
    blobs: dict[str, int] = field(default_factory=dict)
    #: Blob digest -> size: those content storage lacks, to download.
    to_fetch: dict[str, int] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(self.to_fetch.values())

    @property
    def new_manifests(self) -> list[str]:
        return [digest for digest, planned in self.manifests.items() if not planned.held]


# --- planning ------------------------------------------------------------------------------


class Planner:
    """Builds a ``SyncPlan`` for one repository from one upstream."""

    def __init__(self, services: Any, repo_id: str, feed: Any, client: UpstreamClient,
                 progress: Progress) -> None:
        self.services, self.db, self.repo_id = services, services.db, repo_id
        self.feed, self.client, self.progress = feed, client, progress
        self.plan = SyncPlan()
        self._upstream_tags: list[str] | None = None

    def build(self) -> SyncPlan:
        explicit_tags = list(getattr(self.feed, "tags", None) or [])
        explicit_digests = list(getattr(self.feed, "digests", None) or [])
        if explicit_tags or explicit_digests:
            tags = explicit_tags
        else:
            self._upstream_tags = self.client.list_tags()
            tags = [tag for tag in self._upstream_tags
                    if not REFERRER_TAG_RE.match(tag) and feeds.matches_tag(self.feed, tag)]
        for tag in tags:
            self._plan_tag(tag)
        for digest in explicit_digests:
            self._plan_reference(digest, digest)
        if getattr(self.feed, "referrers", True):
            self._plan_referrers()
        self._plan_blobs()
        self._compare_tags()
        return self.plan

    def _skip(self, tag: str, reason: str) -> None:
        self.plan.skipped.append({"tag": tag, "reason": reason})

    def _plan_tag(self, tag: str) -> None:
        try:
            oci.validate_tag(tag)
        except RegistryError:
            self._skip(tag, "not a valid tag")
            return
        self._plan_reference(tag, tag)

    def _plan_reference(self, reference: str, name: str) -> None:
        """Plan what ``reference`` names; an unsupported or absent manifest is skipped, not fatal."""
        fetched = self.client.find_manifest(reference)
        if fetched is None:
            self._skip(name, "not found upstream")
            return
        try:
            digest = self._plan_manifest(fetched, 0)
        except (RegistryError, SkipManifest) as exc:
            self._skip(name, str(exc))
            return
        if digest is None:
            self._skip(name, "no manifest of the chosen platforms")
        elif not oci.is_digest(reference):
            self.plan.tags[reference] = digest

    def _held(self, digest: str, partial: bool) -> bool:
        """The repository holds the manifest as it is to be (a list: with the same children left out)."""
        association = self.db.repo_manifests.find_one({"repo_id": self.repo_id, "digest": digest,
                                                       content.REMOVING: content.VISIBLE})
        return association is not None and bool(association.get(content.PARTIAL)) == partial

    def _load(self, digest: str) -> Fetched:
        """A manifest by digest: from content storage when it is there (verified then), else upstream."""
        storage = self.services.storage
        if storage.exists(digest):
            return Fetched(storage.read(digest), "", digest)
        return self.client.get_manifest(digest)

    def _plan_manifest(self, fetched: Fetched, depth: int) -> str | None:
        """Add a manifest and what it needs; its digest, or None if no child is wanted."""
        if fetched.digest in self.plan.manifests:
            return fetched.digest
        manifest = _parse(fetched)
        partial = False
        if manifest.is_list:
            if depth >= MAX_DEPTH:
                raise SkipManifest(f"manifest lists nest deeper than {MAX_DEPTH}")
            chosen = [child for child in manifest.manifests
                      if child.media_type in oci.LIST_MEDIA_TYPES or feeds.wants_platform(self.feed, child.platform)]
            partial = len(chosen) < len(manifest.manifests)
            planned_children = [self._plan_manifest(self._load(child.digest), depth + 1) for child in chosen]
            if not any(planned_children):
                return None
            partial = partial or not all(planned_children)
        else:
            for descriptor in ([manifest.config] if manifest.config else []) + list(manifest.layers):
                if descriptor.digest in manifest.blob_digests:   # foreign layers stay references
                    self.plan.blobs[descriptor.digest] = descriptor.size
        self.plan.manifests[fetched.digest] = PlannedManifest(fetched.raw, manifest, partial,
                                                              held=self._held(fetched.digest, partial))
        self.progress({"step": "manifests", "done": len(self.plan.manifests), "total": len(self.plan.manifests)})
        return fetched.digest

    def _plan_referrers(self) -> None:
        """Referrers of every planned manifest (and theirs in turn), then cosign's tags beside them."""
        subjects = list(self.plan.manifests)
        seen: set[str] = set()
        for _depth in range(MAX_DEPTH):
            found: list[str] = []
            for subject in subjects:
                if subject in seen:
                    continue
                seen.add(subject)
                for descriptor in self.client.referrers(subject):
                    if descriptor["digest"] not in self.plan.manifests:
                        found.append(descriptor["digest"])
                for tag in self.client.cosign_tags(subject, self._upstream_tags):
                    fetched = self.client.find_manifest(tag)
                    if fetched is not None and self._plan_quietly(fetched, tag):
                        self.plan.tags[tag] = fetched.digest
                        found.append(fetched.digest)
            for digest in dict.fromkeys(found):
                if digest not in self.plan.manifests:
                    self._plan_quietly(self._load(digest), digest)
            subjects = [digest for digest in dict.fromkeys(found) if digest not in seen]
            if not subjects:
                break

    def _plan_quietly(self, fetched: Fetched, name: str) -> bool:
        try:
            return self._plan_manifest(fetched, 0) is not None
        except (RegistryError, SkipManifest) as exc:
            self._skip(name, str(exc))
            return False

    def _plan_blobs(self) -> None:
        storage = self.services.storage
        for digest, size in self.plan.blobs.items():
            if not storage.exists(digest):
                self.plan.to_fetch[digest] = size

    def _compare_tags(self) -> None:
        local = {tag["name"]: tag["manifest_digest"] for tag in self.db.tags.find({"repo_id": self.repo_id})}
        for tag, digest in self.plan.tags.items():
            if tag not in local:
                self.plan.added.append(tag)
            elif local[tag] != digest:
                self.plan.updated.append(tag)
        if getattr(self.feed, "mode", "additive") == "mirror":
            keep = set(self.plan.tags) | {skipped["tag"] for skipped in self.plan.skipped}
            self.plan.removed = sorted(tag for tag in local if tag not in keep)


class SkipManifest(Exception):
    """A manifest the sync leaves out (the reason is the message)."""


def _parse(fetched: Fetched) -> oci.Manifest:
    manifest = oci.parse_manifest(fetched.raw, fetched.media_type or None, oci.digest_algorithm(fetched.digest))
    if manifest.digest != fetched.digest:
        raise UpstreamError(f"manifest {fetched.digest} does not hash to its digest")
    return manifest


def build_plan(services: Any, repo_id: str, feed: Any, client: UpstreamClient, progress: Progress) -> SyncPlan:
    """Everything the sync of ``repo_id`` from ``feed`` will store, computed without storing anything."""
    return Planner(services, repo_id, feed, client, progress).build()
