"""Paths and constants of the published tree: the contract between publish and Crane.

``docs/published-format.md`` describes the format; ``pulp_registry.publish`` is
its one writer and ``crane.published`` its one reader. Pure, so Crane may import it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import quote, unquote

FORMAT_VERSION = 2
#: ``repository.json`` formats a reader accepts: 1 and 2 hold the same fields (format 2 changed the
#: tree around them), so a tree upgraded by ``republish --all`` is served while it is republished.
READABLE_DOCUMENT_FORMATS = (1, 2)
FORMAT_FILE = "FORMAT"
FORMAT_TEXT = f"pulp-registry-published {FORMAT_VERSION}\n"
#: The change journal (``published_journal``) and the sorted names (``published_catalog``).
JOURNAL_DIR = "journal"
CATALOG_DIR = "catalog"
CATALOG_ALL = "all"
CATALOG_PUBLIC = "public"
BLOBS_DIR = "blobs"
REPOSITORIES_DIR = "repositories"
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
REPOSITORY_JSON = "repository.json"


def encode_name(name: str) -> str:
    """A repository name as one directory name (``my/app`` -> ``my%2Fapp``)."""
    return quote(name, safe="")


def decode_name(directory_name: str) -> str:
    return unquote(directory_name)


def blob_path(root: Path, digest: str) -> Path:
    """Where the bytes of a published blob or manifest are; ``digest`` must be validated first."""
    algorithm, hexdigest = digest.split(":", 1)
    return root / BLOBS_DIR / algorithm / hexdigest


def repository_dir(root: Path, name: str) -> Path:
    return root / REPOSITORIES_DIR / encode_name(name)


#: Manifests up to this many bytes are carried in ``repository.json`` too (``content``).
INLINE_MANIFEST_MAX = 4096


def dump_repository(document: Mapping[str, Any]) -> bytes:
    """``repository.json``'s bytes: compact, UTF-8 (readers parse it on every cache miss)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def repository_problems(document: Mapping[str, Any],
                        manifest_blobs: Mapping[str, Iterable[str]] | None = None) -> list[str]:
    """What makes a ``repository.json`` document not whole; empty if it may be served.

    The rules Crane refuses a version by, checked by the publisher before it
    switches ``current``: every tag points at a listed manifest, and every child
    of a listed list or index is listed. The publisher also passes
    ``manifest_blobs`` (manifest digest -> the config and layer digests it needs,
    foreign layers left out), which ``repository.json`` does not record: each of
    those must be listed in ``blobs``.
    """
    problems: list[str] = []
    manifests = document["manifests"]
    for tag, digest in document["tags"].items():
        if digest not in manifests:
            problems.append(f"tag {tag!r} points at {digest}, which is not in manifests")
    for digest, info in manifests.items():
        for child in info.get("platforms") or ():
            if child["digest"] not in manifests:
                problems.append(f"manifest {digest} lists child {child['digest']}, which is not in manifests")
    if manifest_blobs is not None:
        blobs = document["blobs"]
        for digest, needed in manifest_blobs.items():
            if digest not in manifests:
                continue
            for blob_digest in needed:
                if blob_digest not in blobs:
                    problems.append(f"manifest {digest} needs blob {blob_digest}, which is not in blobs")
    return problems


def check_repository(document: Mapping[str, Any],
                     manifest_blobs: Mapping[str, Iterable[str]] | None = None) -> None:
    """Raise ``ValueError`` naming the first problems if ``repository_problems`` finds any."""
    problems = repository_problems(document, manifest_blobs)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError("; ".join(problems[:3]) + more)


# --- reading the tree on the admin side (orphan clean-up) ------------------------------

def is_temporary_name(name: str) -> bool:
    """Names a writer uses while it works and every reader ignores (``.<...>.tmp``, ``.trash-*``)."""
    return name.startswith(".")


def version_names(repo_dir: Path) -> list[str]:
    """The versions of a published repository, oldest first (version names sort by time)."""
    try:
        return sorted(entry.name for entry in (repo_dir / VERSIONS_DIR).iterdir()
                      if not is_temporary_name(entry.name))
    except FileNotFoundError:
        return []


def current_version(repo_dir: Path) -> str | None:
    """The version ``current`` points at, or None before the first switch."""
    try:
        return Path(os.readlink(repo_dir / CURRENT_LINK)).name
    except (FileNotFoundError, OSError):
        return None


def read_version(repo_dir: Path, version: str) -> dict[str, Any]:
    """The ``repository.json`` of one version; ``OSError`` or ``ValueError`` if it cannot be read."""
    document = json.loads((repo_dir / VERSIONS_DIR / version / REPOSITORY_JSON).read_bytes())
    if not isinstance(document, dict) or document.get("format") not in READABLE_DOCUMENT_FORMATS:
        raise ValueError(f"{repo_dir / VERSIONS_DIR / version / REPOSITORY_JSON} is not format "
                         f"{' or '.join(map(str, READABLE_DOCUMENT_FORMATS))}")
    return document


def listed_digests(document: Mapping[str, Any]) -> set[str]:
    """Every manifest and blob digest a version lists: the files of ``blobs/`` it needs."""
    return set(document.get("manifests") or {}) | set(document.get("blobs") or {})
