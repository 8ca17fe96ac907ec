"""One published version of one repository, as Crane holds it in memory (docs/published-format.md).

Built from a ``repository.json`` when the repository is first asked for
(``crane.published.PublishedTree``), so building must be cheap: a random spread
of pulls over a large tree misses the repository cache often. The parsed JSON
is kept as it is and wrapped, not copied: ``ManifestInfo``s are built (and
their digests validated) when a manifest is first looked up, the sorted tags and
the referrers index when first asked for. Safety is kept where paths are
built: every ``ManifestInfo`` holds a validated digest (``manifest_bytes``
builds a file path from it), a digest from a request is validated by the views
before any lookup, and a blob is served only under a digest the views
validated. The structural rules (every tag points at a listed manifest, every
child of a list is listed: ``published_format.check_repository``) are still
checked at load, so a version that breaks them is refused whole.

Measured on repositories of ``tests/crane/scale_tree.py`` (10 tags: 6 KB of
JSON): ``json.loads`` 52 us, the rest of ``parse_repository`` 8 us; it was
135 us when every manifest was built and every digest validated at load (100
tags: 27 us against 1.1 ms).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from pulp_registry import oci
from pulp_registry import published_format as fmt

log = logging.getLogger("crane.published")

#: Bytes of memory a loaded repository takes per byte of its ``repository.json``. Measured once with
#: tracemalloc (traced memory before and after 20 x ``parse_repository(json.loads(data))`` with one manifest
#: looked up each, repositories of 1, 10 and 100 tags of ``tests/crane/scale_tree.py``): 3.3, 2.3 and 2.2
#: bytes per byte. Rounded up to 3 plus ``MEMORY_PER_REPOSITORY``, for the answers the fast path keeps.
MEMORY_PER_JSON_BYTE = 3
#: What any repository costs on top (the objects wrapping the document, its cache entry).
MEMORY_PER_REPOSITORY = 1024

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
    #: The manifest's bytes when ``repository.json`` carries them (``content``), not yet verified.
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Referrer:
    """One manifest whose ``subject`` is another: its referrers-API descriptor, encoded once."""

    digest: str
    #: ``artifactType`` as the referrers API reports it (the manifest's, else its config media type).
    artifact_type: str | None
    #: The descriptor as JSON text, ready to be joined into the referrers index.
    descriptor_json: str

    @property
    def descriptor(self) -> dict[str, Any]:
        return json.loads(self.descriptor_json)


_NO_REFERRERS: Mapping[str, tuple[Referrer, ...]] = MappingProxyType({})


def _platforms(raw: Any) -> tuple[tuple[str, Mapping[str, Any]], ...] | None:
    if not raw:
        return None
    return tuple((item["digest"], MappingProxyType(dict(item.get("platform") or {}))) for item in raw)


def manifest_info(digest: str, info: Mapping[str, Any]) -> ManifestInfo:
    """A manifest of ``repository.json`` in memory; raise ValueError (and the like) if it is not one."""
    content = info.get("content")
    return ManifestInfo(digest=oci.validate_digest(digest), media_type=str(info["media_type"]),
                        size=int(info["size"]), artifact_type=info.get("artifact_type"),
                        config_media_type=info.get("config_media_type"), subject=info.get("subject"),
                        platforms=_platforms(info.get("platforms")),
                        content=content.encode() if type(content) is str else None)


class Manifests(Mapping[str, ManifestInfo]):
    """``repository.json``'s manifests by digest; each ``ManifestInfo`` built and validated when first looked up.

    A listed manifest that is not well formed is logged and treated as absent
    (``MANIFEST_UNKNOWN``), never half served. Building one twice from two
    threads is harmless: both build equal objects.
    """

    __slots__ = ("_raw", "_built")

    def __init__(self, raw: dict[str, Any]) -> None:
        self._raw = raw
        self._built: dict[str, ManifestInfo] = {}

    def get(self, digest: Any, default: Any = None) -> Any:
        info = self._built.get(digest) if type(digest) is str else None
        if info is None:
            raw = self._raw.get(digest) if type(digest) is str else None
            if raw is None:
                return default
            try:
                info = manifest_info(digest, raw)
            except Exception as exc:   # noqa: BLE001 - one bad entry must not break the repository
                log.error("manifest %r is listed but not well formed: %s", digest, exc)
                return default
            self._built[digest] = info
        return info

    def __getitem__(self, digest: str) -> ManifestInfo:
        info = self.get(digest)
        if info is None:
            raise KeyError(digest)
        return info

    def __contains__(self, digest: object) -> bool:
        return self.get(digest) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def raw(self) -> Mapping[str, Any]:
        """The manifests as ``repository.json`` lists them (for the referrers index)."""
        return self._raw


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


def referrers_by_subject(manifests: Mapping[str, Any]) -> Mapping[str, tuple[Referrer, ...]]:
    """Subject digest -> the manifests that refer to it, by digest; malformed entries are left out (logged)."""
    by_subject: dict[str, list[Referrer]] = {}
    for digest, info in manifests.items():
        subject = info.get("subject")
        if not subject:
            continue
        try:
            by_subject.setdefault(oci.validate_digest(subject), []).append(
                referrer_of(oci.validate_digest(digest), info))
        except Exception as exc:   # noqa: BLE001 - one bad entry must not hide the others
            log.error("manifest %r: not listed as a referrer: %s", digest, exc)
    if not by_subject:
        return _NO_REFERRERS
    return MappingProxyType({subject: tuple(sorted(found, key=lambda referrer: referrer.digest))
                             for subject, found in by_subject.items()})


class PublishedRepository:
    """One published version of one repository; what it serves never changes once built.

    ``prepared`` is the fast path's answers for this version (``crane.fastpath``):
    kept here so that they go when the repository leaves the cache.
    """

    __slots__ = ("name", "repo_id", "protected", "version", "tags", "manifests", "blobs", "memory",
                 "prepared", "_sorted_tags", "_referrers", "__weakref__")

    def __init__(self, name: str, repo_id: str, protected: bool, version: str, tags: Mapping[str, str],
                 manifests: Mapping[str, ManifestInfo], blobs: Mapping[str, int], memory: int = 0) -> None:
        self.name = name
        self.repo_id = repo_id
        self.protected = protected
        self.version = version
        self.tags = tags
        self.manifests = manifests
        self.blobs = blobs
        #: Estimated bytes of memory this version takes (what the repository cache counts).
        self.memory = memory
        self.prepared: dict[Any, Any] = {}
        self._sorted_tags: tuple[str, ...] | None = None
        self._referrers: Mapping[str, tuple[Referrer, ...]] | None = None

    def __repr__(self) -> str:
        return f"<PublishedRepository {self.name} {self.version}>"

    @property
    def sorted_tags(self) -> tuple[str, ...]:
        if self._sorted_tags is None:
            self._sorted_tags = tuple(sorted(self.tags))
        return self._sorted_tags

    @property
    def referrers(self) -> Mapping[str, tuple[Referrer, ...]]:
        """Subject digest -> the manifests of this repository that refer to it; built when first asked for."""
        if self._referrers is None:
            manifests = self.manifests
            self._referrers = referrers_by_subject(manifests.raw() if isinstance(manifests, Manifests)
                                                   else {digest: {"media_type": info.media_type,
                                                                  "size": info.size, "subject": info.subject,
                                                                  "artifact_type": info.artifact_type,
                                                                  "config_media_type": info.config_media_type}
                                                         for digest, info in manifests.items()})
        return self._referrers

    def holds_blob(self, digest: str) -> int | None:
        """Size of ``digest`` if this repository may serve it as a blob (layers, configs, its manifests)."""
        size = self.blobs.get(digest)
        if type(size) is int:
            return size
        manifest = self.manifests.get(digest)
        return manifest.size if manifest is not None else None


def parse_repository(doc: Mapping[str, Any], version: str, json_bytes: int = 0) -> PublishedRepository:
    """The in-memory form of a ``repository.json``; raise ValueError (or the like) if it is not one.

    ``json_bytes``: the document's size on disk, from which its memory is estimated.
    """
    if doc.get("format") not in fmt.READABLE_DOCUMENT_FORMATS:
        raise ValueError(f"format {doc.get('format')!r} is not "
                         f"{' or '.join(map(str, fmt.READABLE_DOCUMENT_FORMATS))}")
    name = oci.validate_name(doc["name"])
    tags, manifests, blobs = doc["tags"], doc["manifests"], doc["blobs"]
    if not (type(tags) is dict and type(manifests) is dict and type(blobs) is dict):
        raise ValueError("tags, manifests and blobs must be objects")
    fmt.check_repository(doc)   # the rules the publisher checks before it switches to a version
    return PublishedRepository(
        name=name, repo_id=str(doc.get("repo_id", "")), protected=bool(doc.get("protected", False)),
        version=version, tags=MappingProxyType(tags), manifests=Manifests(manifests),
        blobs=MappingProxyType(blobs), memory=MEMORY_PER_REPOSITORY + json_bytes * MEMORY_PER_JSON_BYTE)
