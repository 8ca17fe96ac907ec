"""The one reader of the published tree (docs/published-format.md).

Every repository's live ``repository.json`` is held in memory as an immutable
``PublishedRepository``; all of them together form one immutable ``Snapshot``
whose reference is swapped in one assignment, so a request that took a
repository keeps that version to the end while other threads reload. At most
once per ``poll_interval`` a request reads the ``generation`` file; when it
changed, each repository's ``current`` link is read and only repositories
whose link target changed are loaded again (always through the version
directory the link named, so a half-written version is never seen).
A lookup that misses (unknown name, tag, manifest or blob) reads
``generation`` at once before a 404 is answered, since another worker may
already serve a newer version. Referrers are indexed by subject when a
version is loaded, never per request.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from pulp_registry import oci
from pulp_registry import published_format as fmt

log = logging.getLogger("crane.published")


class PublishedFormatError(RuntimeError):
    """The tree is written in a format this Crane cannot read; start-up stops."""


class ContentMissing(LookupError):
    """Listed content whose bytes are not (or no longer correctly) in ``blobs/``."""


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None = None
    config_media_type: str | None = None
    subject: str | None = None
    #: For a list or index: ``((child digest, platform dict), ...)``.
    platforms: tuple[tuple[str, Mapping[str, Any]], ...] | None = None


@dataclass(frozen=True, slots=True)
class Referrer:
    """One manifest whose ``subject`` is another: its referrers-API descriptor, encoded once at load."""

    digest: str
    #: ``artifactType`` as the referrers API reports it (the manifest's, else its config media type).
    artifact_type: str | None
    #: The descriptor as JSON text, ready to be joined into the referrers index.
    descriptor_json: str

    @property
    def descriptor(self) -> dict[str, Any]:
        return json.loads(self.descriptor_json)


_NO_REFERRERS: Mapping[str, tuple[Referrer, ...]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PublishedRepository:
    """One published version of one repository; never changes once built."""

    name: str
    repo_id: str
    protected: bool
    version: str
    tags: Mapping[str, str]
    manifests: Mapping[str, ManifestInfo]
    blobs: Mapping[str, int]
    sorted_tags: tuple[str, ...]
    #: Subject digest -> the manifests of this repository that refer to it, by digest.
    referrers: Mapping[str, tuple[Referrer, ...]] = field(default_factory=lambda: _NO_REFERRERS)

    def holds_blob(self, digest: str) -> int | None:
        """Size of ``digest`` if this repository may serve it as a blob (layers, configs, its manifests)."""
        size = self.blobs.get(digest)
        if size is None:
            manifest = self.manifests.get(digest)
            size = manifest.size if manifest is not None else None
        return size


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything Crane serves at one moment: repositories by name, public names sorted."""

    repositories: Mapping[str, PublishedRepository] = field(default_factory=dict)
    public_names: tuple[str, ...] = ()
    #: Repository directory name -> the ``current`` link target its repository was loaded from.
    link_targets: Mapping[str, str] = field(default_factory=dict)


def _platforms(raw: Any) -> tuple[tuple[str, Mapping[str, Any]], ...] | None:
    if not raw:
        return None
    return tuple((sys.intern(item["digest"]), MappingProxyType(dict(item.get("platform") or {})))
                 for item in raw)


def referrer_of(digest: str, info: Mapping[str, Any]) -> Referrer:
    """The referrers-API entry of a manifest (OCI distribution spec 1.1, "Listing Referrers").

    ``artifactType`` is the manifest's own; if empty, an image manifest's config
    media type; an index without one has none. Annotations are the manifest's.
    """
    media_type = info["media_type"]
    artifact_type = info.get("artifact_type") or None
    if artifact_type is None and media_type not in oci.LIST_MEDIA_TYPES:
        artifact_type = info.get("config_media_type") or None
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": int(info["size"])}
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if info.get("annotations"):
        descriptor["annotations"] = dict(info["annotations"])
    return Referrer(digest, artifact_type, json.dumps(descriptor, separators=(",", ":")))


def _referrers(doc_manifests: Mapping[str, Any]) -> Mapping[str, tuple[Referrer, ...]]:
    by_subject: dict[str, list[Referrer]] = {}
    for digest, info in doc_manifests.items():
        subject = info.get("subject")
        if subject:
            by_subject.setdefault(oci.validate_digest(subject), []).append(referrer_of(digest, info))
    if not by_subject:
        return _NO_REFERRERS
    return MappingProxyType({subject: tuple(sorted(found, key=lambda referrer: referrer.digest))
                             for subject, found in by_subject.items()})


def parse_repository(doc: Mapping[str, Any], version: str) -> PublishedRepository:
    """Build the in-memory form of a ``repository.json``; raise ValueError if it is not one."""
    if doc.get("format") != fmt.FORMAT_VERSION:
        raise ValueError(f"format {doc.get('format')!r} is not {fmt.FORMAT_VERSION}")
    name = oci.validate_name(doc["name"])
    manifests: dict[str, ManifestInfo] = {}
    for digest, info in doc["manifests"].items():
        digest = sys.intern(oci.validate_digest(digest))
        manifests[digest] = ManifestInfo(
            digest=digest, media_type=sys.intern(info["media_type"]), size=int(info["size"]),
            artifact_type=info.get("artifact_type"), config_media_type=info.get("config_media_type"),
            subject=info.get("subject"), platforms=_platforms(info.get("platforms")))
    tags = {sys.intern(tag): sys.intern(oci.validate_digest(digest)) for tag, digest in doc["tags"].items()}
    blobs = {sys.intern(oci.validate_digest(digest)): int(size) for digest, size in doc["blobs"].items()}
    fmt.check_repository(doc)   # the rules the publisher checks before it switches to a version
    return PublishedRepository(
        name=name, repo_id=str(doc.get("repo_id", "")), protected=bool(doc.get("protected", False)),
        version=version, tags=MappingProxyType(tags), manifests=MappingProxyType(manifests),
        blobs=MappingProxyType(blobs), sorted_tags=tuple(sorted(tags)), referrers=_referrers(doc["manifests"]))


def read_format(root: Path) -> bool:
    """True if the tree is there in a format we read, False if absent; raise if it is another format."""
    try:
        text = (root / fmt.FORMAT_FILE).read_text()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot read %s: %s", root / fmt.FORMAT_FILE, exc)
        return False
    if text.strip() != fmt.FORMAT_TEXT.strip():
        raise PublishedFormatError(
            f"{root / fmt.FORMAT_FILE} says {text.strip()!r}; this Crane reads only "
            f"{fmt.FORMAT_TEXT.strip()!r}. Upgrade Crane or point data_dir at a tree it can read.")
    return True


class ManifestCache:
    """Manifest bytes by digest, least recently used dropped first, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if digest in self._items:
                return
            self._items[digest] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class PublishedTree:
    """The published tree as Crane sees it; one per process, shared by all threads."""

    def __init__(self, root: str | os.PathLike[str], poll_interval: float = 1.0,
                 manifest_cache_size: int = 64 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        self.poll_interval = poll_interval
        self._clock = clock
        self._cache = ManifestCache(manifest_cache_size)
        self._reload_lock = threading.Lock()
        self._snapshot = Snapshot()
        self._generation: str | None | object = object()   # never equal to a real token
        self._next_check = 0.0
        #: Versions of the tree loaded so far (each changed ``generation`` seen): Crane's reload metric.
        self.reloads = 0
        self._format_ok = read_format(self.root)   # raises on an unknown format: refuse to start
        if not self._format_ok:
            log.warning("no published tree at %s (no %s file): serving no repositories until one is published",
                        self.root, fmt.FORMAT_FILE)
        self.refresh()

    # --- what requests use ------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def repository(self, name: str) -> PublishedRepository | None:
        return self._snapshot.repositories.get(name)

    def refresh_if_due(self) -> None:
        """Called by every request: a clock read unless ``poll_interval`` has passed."""
        if self._clock() >= self._next_check:
            self.refresh()

    def manifest_bytes(self, manifest: ManifestInfo) -> bytes:
        """The exact stored bytes of a manifest, verified once when first read."""
        data = self._cache.get(manifest.digest)
        if data is None:
            path = fmt.blob_path(self.root, manifest.digest)
            try:
                data = path.read_bytes()
            except OSError as exc:
                log.error("manifest %s is listed but cannot be read: %s", manifest.digest, exc)
                raise ContentMissing(manifest.digest) from None
            algorithm = manifest.digest.split(":", 1)[0]
            if oci.compute_digest(data, algorithm) != manifest.digest:
                log.error("manifest %s: bytes in %s do not match their digest", manifest.digest, path)
                raise ContentMissing(manifest.digest)
            self._cache.put(manifest.digest, data)
        return data

    def blob_file(self, digest: str) -> Path:
        """Path of a blob's bytes; ``digest`` must have been validated."""
        return fmt.blob_path(self.root, digest)

    # --- reloading --------------------------------------------------------------

    def refresh(self) -> None:
        """Reload what changed if ``generation`` moved; threads that find a reload under way go on."""
        if not self._reload_lock.acquire(blocking=False):
            return
        try:
            self._refresh_locked()
        finally:
            self._reload_lock.release()

    def refresh_on_miss(self) -> None:
        """A lookup missed: catch up with the latest publish now, whatever the poll interval says.

        Another worker (or Crane instance) may already serve a newer version, and
        a client's next request -- the blob of a manifest it just got, a tag it
        just listed -- can land here. So a miss reads ``generation`` before it is
        answered with a 404 and, if it moved, reloads (waiting for a reload
        another thread started). Hits never pay for this.
        """
        if self._format_ok and self._read_generation() == self._generation:
            return
        with self._reload_lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        self._next_check = self._clock() + self.poll_interval
        if not self._format_ok:
            try:
                self._format_ok = read_format(self.root)
            except PublishedFormatError as exc:
                log.error("%s", exc)
                return
            if not self._format_ok:
                return
        generation = self._read_generation()
        if generation == self._generation:
            return
        self._snapshot = self._scan(self._snapshot)
        self._generation = generation
        self.reloads += 1

    def _read_generation(self) -> str | None:
        try:
            return (self.root / fmt.GENERATION_FILE).read_text()
        except OSError:
            return None

    def _scan(self, old: Snapshot) -> Snapshot:
        repositories_dir = self.root / fmt.REPOSITORIES_DIR
        try:
            entries = sorted(os.listdir(repositories_dir))
        except FileNotFoundError:
            entries = []
        old_by_dir = {fmt.encode_name(repo.name): repo for repo in old.repositories.values()}
        repositories: dict[str, PublishedRepository] = {}
        link_targets: dict[str, str] = {}
        for entry in entries:
            repo_dir = repositories_dir / entry
            try:
                target = os.readlink(repo_dir / fmt.CURRENT_LINK)
            except OSError:
                continue   # being created or removed, or not a repository
            previous = old_by_dir.get(entry)
            old_target = old.link_targets.get(entry)
            if previous is not None and old_target == target:
                repositories[previous.name] = previous
                link_targets[entry] = target
                continue
            repository = self._load(repo_dir, target)
            if repository is not None and fmt.encode_name(repository.name) != entry:
                log.error("%s: repository.json names %r, which belongs in another directory; skipped",
                          repo_dir, repository.name)
                repository = None
            if repository is not None:
                repositories[repository.name] = repository
                link_targets[entry] = target
            elif previous is not None and old_target is not None:
                # Keep serving the last good version; the next publish is tried again.
                repositories[previous.name] = previous
                link_targets[entry] = old_target
        public = tuple(sorted(name for name, repo in repositories.items() if not repo.protected))
        return Snapshot(MappingProxyType(repositories), public, MappingProxyType(link_targets))

    def _load(self, repo_dir: Path, target: str) -> PublishedRepository | None:
        version_dir = Path(os.path.normpath(repo_dir / target))
        if version_dir.parent != Path(os.path.normpath(repo_dir / fmt.VERSIONS_DIR)):
            log.error("%s: current points at %r, outside versions/; skipped", repo_dir, target)
            return None
        try:
            with open(version_dir / fmt.REPOSITORY_JSON, "rb") as handle:
                doc = json.load(handle)
            return parse_repository(doc, version_dir.name)
        except FileNotFoundError:
            log.warning("%s: version %s vanished while loading (a newer publish will follow)", repo_dir, target)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.error("%s: cannot load version %s: %s", repo_dir, target, exc)
        except Exception as exc:   # noqa: BLE001 - a bad file must not take Crane down
            log.error("%s: cannot load version %s: %s", repo_dir, target, exc)
        return None
