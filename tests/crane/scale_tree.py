"""Published trees of any size, written directly in the published format (docs/published-format.md).

What a number of publishes would leave, without a database or content store: used by
``tests/crane/test_crane_scale.py`` and ``benchmarks/crane_scale.py``. Paths and
constants come from ``pulp_registry.published_format``, as the publisher's do.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from pulp_registry import published_format as fmt
from pulp_registry.published_catalog import rebuild_catalog, update_catalog
from pulp_registry.published_journal import Change, append_change, init_journal, journal_lock
from pulp_registry.published_tags import write_tag_documents

VERSION = "20261125T170000.000000Z-0000abcd"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def repository_name(number: int) -> str:
    return f"team{number % 25}/service-{number}"


def tag_name(number: int, tag_number: int) -> str:
    return f"v1.{tag_number}.{number}"


def _manifest_bytes(config: str, layer: str) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                       "config": {"mediaType": CONFIG_TYPE, "digest": config, "size": 1480},
                       "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                   "digest": layer, "size": 31_415_926}]}, sort_keys=True).encode()


def _write_blob(root: Path, digest: str, data: bytes) -> None:
    """Temp file and rename, as the publisher writes ``blobs/``."""
    path = fmt.blob_path(root, digest)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(data)
    os.rename(temporary, path)


def repository_document(root: Path, number: int, tags_per_repository: int, salt: str = "",
                        manifest_blobs: bool = False) -> dict[str, Any]:
    """The ``repository.json`` of repository ``number``: every tag its own image manifest.

    Each manifest has a config and a layer; the first tag also has a signature
    referring to it (so referrers are built too). With ``manifest_blobs`` the
    manifests are real bytes, written to ``blobs/`` under their true digest (so
    Crane can serve them); otherwise digests are made up and nothing is written.
    ``salt`` changes every digest (a new publish of the same repository).
    """
    name = repository_name(number)
    tags, manifests, blobs = {}, {}, {}
    for tag_number in range(tags_per_repository):
        tag = tag_name(number, tag_number)
        config, layer = fake_digest(f"{name}:{tag}:config{salt}"), fake_digest(f"{name}:{tag}:layer{salt}")
        size = 1021
        if manifest_blobs:
            data = _manifest_bytes(config, layer)
            digest, size = "sha256:" + hashlib.sha256(data).hexdigest(), len(data)
            _write_blob(root, digest, data)
        else:
            digest = fake_digest(f"{name}:{tag}{salt}")
        tags[tag] = digest
        manifests[digest] = {"media_type": MANIFEST_TYPE, "size": size, "config_media_type": CONFIG_TYPE}
        if manifest_blobs and size <= fmt.INLINE_MANIFEST_MAX:
            manifests[digest]["content"] = data.decode()
        blobs[config], blobs[layer] = 1480, 31_415_926
        if tag_number == 0:
            signature = fake_digest(f"{name}:{tag}:signature{salt}")
            manifests[signature] = {"media_type": MANIFEST_TYPE, "size": 700,
                                    "artifact_type": "application/vnd.dev.cosign.artifact.sig.v1+json",
                                    "config_media_type": "application/vnd.oci.empty.v1+json",
                                    "subject": digest, "annotations": {"created": "2026-01-01"}}
    return {"format": fmt.FORMAT_VERSION, "name": name, "repo_id": name.replace("/", "-"),
            "protected": number % 10 == 0, "published": "2026-11-25T17:00:00Z",
            "tags": tags, "manifests": manifests, "blobs": blobs}


def write_version(root: Path, document: dict[str, Any], version: str = VERSION) -> None:
    """``versions/<version>/repository.json`` of a repository (temp file and rename), its tag documents first."""
    version_dir = fmt.repository_dir(root, document["name"]) / fmt.VERSIONS_DIR / version
    version_dir.mkdir(parents=True)
    temporary = version_dir / f".{fmt.REPOSITORY_JSON}.{secrets.token_hex(4)}.tmp"
    document = {"format": document["format"], "version": version, **document}
    write_tag_documents(version_dir, document, sync=False)
    temporary.write_bytes(fmt.dump_repository(document))
    os.rename(temporary, version_dir / fmt.REPOSITORY_JSON)


def switch_current(root: Path, name: str, version: str) -> None:
    """Point ``current`` at ``version`` in one rename, then, under the writers' lock, update the catalog and
    append the journal line: the publisher's switch."""
    repo_dir = fmt.repository_dir(root, name)
    protected = bool(fmt.read_version(repo_dir, version)["protected"])
    link = repo_dir / f"{fmt.CURRENT_LINK}.{secrets.token_hex(4)}"
    os.symlink(f"{fmt.VERSIONS_DIR}/{version}", link)
    os.rename(link, repo_dir / fmt.CURRENT_LINK)
    with journal_lock(root):
        changed = update_catalog(root, name, present=True, public=not protected)
        append_change(root, Change(name, version, protected, catalog=changed))


def write_published_tree(root: Path, repositories: int, tags_per_repository: int,
                         manifest_blobs: bool = False) -> None:
    """A published tree as publishes leave it: per repository one version, ``current`` linking to it;
    an empty journal and the catalog of every name (written once, at the end), ``FORMAT`` last."""
    (root / fmt.BLOBS_DIR / "sha256").mkdir(parents=True)
    init_journal(root)
    names: list[tuple[str, bool]] = []
    for number in range(repositories):
        document = repository_document(root, number, tags_per_repository, manifest_blobs=manifest_blobs)
        write_version(root, document)
        os.symlink(f"{fmt.VERSIONS_DIR}/{VERSION}", fmt.repository_dir(root, document["name"]) / fmt.CURRENT_LINK)
        names.append((document["name"], not document["protected"]))
    with journal_lock(root):
        rebuild_catalog(root, names)
    (root / fmt.FORMAT_FILE).write_text(fmt.FORMAT_TEXT)
