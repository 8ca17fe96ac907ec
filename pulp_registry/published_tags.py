"""``versions/<v>/tags/<tag>``: each tag of a version as a ``repository.json`` of its own, one tag long.

A random spread of pulls over a large tree mostly asks Crane for repositories
it has not loaded; the first request of a pull is a manifest by tag. Reading
the whole ``repository.json`` for it (parse every tag, cache it, drop it unused
soon after) cost about 75 us of a worker's CPU in-process here; a tag document
answers it with one short read in about 50 us: the tag, its manifest (with its
``content``), and for a list or index the entries of its children, so the
document keeps the rules of ``published_format.check_repository``.

Tag documents are derived from ``repository.json`` and written before it into
the version directory, without an fsync each (a publish of 10,000 tags would
spend seconds in them); the directory is fsynced, and the fsync of
``repository.json`` that follows commits them on journalling filesystems. A
reader checks a tag document (its name, version and tag) and uses
``repository.json`` whenever one is missing or unusable: they are an index,
never the only copy. Pure and importable by Crane.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pulp_registry import published_format as fmt
from pulp_registry.durable import fsync_dir

TAGS_DIR = "tags"
#: The document's fields a tag document carries besides its one tag, manifest(s) and no blobs.
_KEPT = ("format", "version", "name", "repo_id", "protected")


def tag_document(document: Mapping[str, Any], tag: str) -> dict[str, Any]:
    """The tag document of ``tag`` in a whole ``repository.json`` document (which must hold ``version``)."""
    manifests = document["manifests"]
    digest = document["tags"][tag]
    entry = manifests[digest]
    listed = {digest: entry}
    for child in entry.get("platforms") or ():
        child_entry = dict(manifests[child["digest"]])
        child_entry.pop("content", None)   # a list's children are rarely asked for by tag: blobs/ has them
        listed.setdefault(child["digest"], child_entry)
    kept = {key: document[key] for key in _KEPT if key in document}
    return {**kept, "tags": {tag: digest}, "manifests": listed, "blobs": {}}


def tag_path(version_dir: str, tag: str) -> str:
    """A tag's document in a version directory; tag names (``[A-Za-z0-9_][A-Za-z0-9._-]*``) are file names."""
    return f"{version_dir}/{TAGS_DIR}/{tag}"


def write_tag_documents(version_dir: Path, document: Mapping[str, Any], sync: bool = True) -> None:
    """Write every tag's document into ``version_dir`` (new, so nothing reads it yet); see module doc.

    ``sync=False`` leaves out the directory's fsync (generated test trees).
    """
    tags_dir = version_dir / TAGS_DIR
    tags_dir.mkdir()
    for tag in document["tags"]:
        with open(tags_dir / tag, "xb") as out:
            out.write(fmt.dump_repository(tag_document(document, tag)))
    if sync:
        fsync_dir(tags_dir)
