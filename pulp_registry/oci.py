"""Pure helpers of the registry protocol: media types, digests, names, manifests.

Shared by the admin side and Crane, so it imports nothing beyond the standard
library and ``registry_errors``.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlencode

from pulp_registry.registry_errors import (DigestInvalid, ManifestInvalid, ManifestUnknown, NameInvalid,
                                          PaginationNumberInvalid, RangeNotSatisfiable, TagInvalid)

# --- media types: the one table -------------------------------------------------

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#: Layers a registry is not expected to hold (Windows base layers and the like).
FOREIGN_LAYER_MEDIA_TYPES = frozenset({
    DOCKER_FOREIGN_LAYER,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
})
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

#: Manifest media types we store and serve, and whether each lists other manifests.
MANIFEST_MEDIA_TYPES: dict[str, str] = {
    DOCKER_MANIFEST: "image",
    OCI_MANIFEST: "image",
    DOCKER_MANIFEST_LIST: "list",
    OCI_INDEX: "list",
}
LIST_MEDIA_TYPES = frozenset(t for t, kind in MANIFEST_MEDIA_TYPES.items() if kind == "list")
IMAGE_MEDIA_TYPES = frozenset(t for t, kind in MANIFEST_MEDIA_TYPES.items() if kind == "image")

# --- names, tags and digests ------------------------------------------------------

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")
MAX_NAME_LENGTH = 255
DIGEST_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise ``NameInvalid``."""
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise NameInvalid(f"invalid repository name {name!r}: lowercase components of [a-z0-9] "
                          "separated by '.', '_', '__' or '-', joined by '/', at most 255 characters")
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise ``TagInvalid``."""
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise TagInvalid(f"invalid tag {tag!r}: [A-Za-z0-9_] then up to 127 of [A-Za-z0-9._-]")
    return tag


def is_digest(reference: str) -> bool:
    return bool(DIGEST_RE.match(reference))


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>``, else raise ``DigestInvalid``."""
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise DigestInvalid(f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    return digest


def validate_reference(reference: str) -> str:
    """A manifest reference is a digest or a tag."""
    if ":" in reference:
        return validate_digest(reference)
    return validate_tag(reference)


def require_manifest_name(reference: str) -> str:
    """For a GET or HEAD of a manifest: what is neither a tag nor a digest names no manifest, so it
    is 404 ``MANIFEST_UNKNOWN``, as the OCI conformance suite expects (a PUT validates it: 400)."""
    if not is_digest(reference) and not TAG_RE.match(reference):
        raise ManifestUnknown(f"manifest {reference} is unknown: not a valid tag or digest",
                              detail={"reference": reference})
    return reference


class Digester:
    """Incremental digest of a stream, so content is hashed once as it is written."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in DIGEST_ALGORITHMS:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._hash = DIGEST_ALGORITHMS[algorithm]()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        return f"{self.algorithm}:{self._hash.hexdigest()}"


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    digester = Digester(algorithm)
    digester.update(data)
    return digester.digest


def digest_algorithm(digest: str) -> str:
    return validate_digest(digest).split(":", 1)[0]


# --- manifests ------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """The descriptor in OCI form (as listed by the referrers API)."""
        doc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform is not None:
            doc["platform"] = self.platform
        if self.artifact_type:
            doc["artifactType"] = self.artifact_type
        if self.annotations:
            doc["annotations"] = self.annotations
        return doc


@dataclass(frozen=True)
class Manifest:
    """What a manifest says about the content it needs, parsed from its exact bytes."""

    digest: str
    media_type: str
    size: int
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None, hash=False)

    @property
    def is_list(self) -> bool:
        return self.media_type in LIST_MEDIA_TYPES

    @property
    def blob_digests(self) -> list[str]:
        """Blobs this manifest needs in the same repository (config first, then layers)."""
        blobs = [self.config.digest] if self.config else []
        blobs.extend(layer.digest for layer in self.layers
                     if layer.media_type not in FOREIGN_LAYER_MEDIA_TYPES)
        return blobs

    @property
    def child_digests(self) -> list[str]:
        return [child.digest for child in self.manifests]


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where}: expected a descriptor object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType: missing or not a string")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise ManifestInvalid(f"{where}.digest: {digest!r} is not a valid digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size: must be a non-negative integer")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalid(f"{where}.platform: expected an object")
    annotations = value.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid(f"{where}.annotations: expected an object")
    artifact_type = value.get("artifactType")
    return Descriptor(media_type, digest, size, platform,
                      artifact_type if isinstance(artifact_type, str) else None, annotations)


def _descriptors(values: Any, where: str) -> tuple[Descriptor, ...]:
    if not isinstance(values, list):
        raise ManifestInvalid(f"{where}: expected a list")
    return tuple(_descriptor(v, f"{where}[{i}]") for i, v in enumerate(values))


def detect_media_type(doc: dict[str, Any], content_type: str | None) -> str:
    """The manifest's media type from its ``mediaType`` field, else the request's Content-Type."""
    declared = doc.get("mediaType")
    content_type = (content_type or "").split(";", 1)[0].strip()
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType: not a string")
    if declared in (DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED) or content_type in (
            DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise ManifestInvalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    if declared and content_type in MANIFEST_MEDIA_TYPES and declared != content_type:
        raise ManifestInvalid(f"mediaType {declared!r} does not match Content-Type {content_type!r}")
    media_type = declared or (content_type if content_type in MANIFEST_MEDIA_TYPES else None)
    if media_type is None:
        # OCI allows mediaType to be omitted; tell an index from a manifest by shape.
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r} "
                              f"(supported: {', '.join(MANIFEST_MEDIA_TYPES)})")
    return media_type


def parse_manifest(raw: bytes, content_type: str | None = None, algorithm: str = "sha256") -> Manifest:
    """Parse and validate manifest bytes; raise ``ManifestInvalid`` saying what is wrong.

    The bytes are never re-serialized: the digest is of ``raw`` as received.
    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    media_type = detect_media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion: must be 2")
    digest = compute_digest(raw, algorithm)
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = doc.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid("annotations: expected an object")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType: not a string")
    if media_type in LIST_MEDIA_TYPES:
        if "manifests" not in doc:
            raise ManifestInvalid("manifests: required in a manifest list or index")
        return Manifest(digest, media_type, len(raw), manifests=_descriptors(doc["manifests"], "manifests"),
                        subject=subject, artifact_type=artifact_type, annotations=annotations)
    if "config" not in doc:
        raise ManifestInvalid("config: required in an image manifest")
    config = _descriptor(doc["config"], "config")
    layers = _descriptors(doc.get("layers", []), "layers")
    if media_type == DOCKER_MANIFEST and not layers:
        raise ManifestInvalid("layers: a Docker schema 2 manifest needs at least one layer")
    return Manifest(digest, media_type, len(raw), config=config, layers=layers, subject=subject,
                    artifact_type=artifact_type, annotations=annotations)


def accepted_media_types(accept_headers: Iterable[str]) -> set[str]:
    """Media types named in one or more ``Accept`` headers (parameters dropped)."""
    types: set[str] = set()
    for header in accept_headers:
        for part in header.split(","):
            media_type = part.split(";", 1)[0].strip()
            if media_type:
                types.add(media_type)
    return types


# --- byte ranges of blob GETs ------------------------------------------------------

BYTE_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte a ``Range`` header asks of a blob of ``size`` bytes.

    None (send the whole blob): no header, another unit, or several ranges. One byte range that
    is malformed (``500-0``) or starts past the end raises ``RangeNotSatisfiable`` (416), as the
    OCI conformance suite expects; an end past the blob's end is cut to it.
    """
    if header is None:
        return None
    value = header.strip().replace(" ", "")
    if not value.startswith("bytes=") or "," in value:
        return None
    match = BYTE_RANGE_RE.match(value)
    unsatisfiable = RangeNotSatisfiable(f"range {header!r} is not satisfiable for a blob of {size} bytes",
                                        headers={"Content-Range": f"bytes */{size}"})
    if match is None or (not match.group(1) and not match.group(2)):
        raise unsatisfiable
    first_text, last_text = match.groups()
    if not first_text:  # the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise unsatisfiable
        return max(size - length, 0), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last < first or first >= size:
        raise unsatisfiable
    return first, min(last, size - 1)


# --- pagination of tags lists and the catalog -------------------------------------


def page_args(args: Mapping[str, str]) -> tuple[int | None, str | None]:
    """``n`` (None: everything) and ``last`` from the query string; a bad ``n`` is refused."""
    raw_n = args.get("n")
    n: int | None = None
    if raw_n is not None and raw_n != "":
        if not raw_n.isdigit():
            raise PaginationNumberInvalid(f"n: {raw_n!r} is not a non-negative integer")
        n = int(raw_n)
    return n, args.get("last") or None


def next_link(path: str, page: Sequence[str], n: int) -> str:
    """``Link`` value pointing at the page after ``page`` (a URL relative to the host, as distribution sends)."""
    return f'<{path}?{urlencode({"last": page[-1], "n": n})}>; rel="next"'
