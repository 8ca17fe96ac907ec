"""``pulp-registry restore``: load a backup (``backup.py``) into an empty install and publish it again.

Everything is checked before anything is written: ``backup.json`` (format and
version), the SHA-256 of every database file and of the digest list, then the
size and recomputed digest of every content file. Then the content is written
through the content store (temp file, fsync, verified, renamed), the
collections are loaded, and every repository that was published is published
again, so Crane serves what it served before the backup.

The target must be empty (no repository, manifest or blob in the database, no
file in the content store) unless ``force`` is given; then its collections are
replaced by the backup's, its content files are kept beside the restored ones,
and repositories the backup lacks are removed from the published tree.
Collections of process state are not restored: ``workers`` (heartbeats of the
old processes), ``locks`` (held by tasks that ended before the backup) and
``uploads`` (upload sessions, whose files are not backed up: clients push again).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import bson
from bson.codec_options import CodecOptions

from pulp_registry import maintenance
from pulp_registry.backup import (CHUNK_SIZE, CONTENT_LIST, FORMAT, FORMAT_VERSION, METADATA_FILE, Report,
                                  content_path, count_summary)
from pulp_registry.oci import Digester, digest_algorithm, is_digest

#: Collections left out of a restore, and why (see the module docstring).
NOT_RESTORED = {"workers": "heartbeats of the old processes", "locks": "held by tasks that have ended",
                "uploads": "upload sessions, whose files are not backed up"}
READ_ONLY_REASON = "restore"
_INSERT_BATCH = 1000
#: Read datetimes back as they were written (UTC), ObjectIds and binary values as their BSON types.
_CODEC_OPTIONS: CodecOptions = CodecOptions(tz_aware=True)


class RestoreError(Exception):
    """The backup is not whole or the target is not empty: nothing (more) is written; one line says why."""


@dataclass
class RestoreResult:
    collections: dict[str, int]
    content_files: int
    content_bytes: int
    counts: dict[str, int]
    published: list[str] = field(default_factory=list)
    publish_failures: list[str] = field(default_factory=list)


def _no_report(_line: str) -> None:
    pass


def _file_sha256(path: Path) -> str:
    file_hash = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            file_hash.update(chunk)
    return file_hash.hexdigest()


def _inside(directory: Path, relative: str) -> Path:
    """``directory / relative``, refusing a name from the backup that leaves the directory."""
    path = (directory / relative).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise RestoreError(f"backup.json names {relative!r}, outside the backup directory")
    return path


def read_metadata(directory: Path) -> dict[str, Any]:
    """``backup.json``, checked for the format this version reads."""
    path = Path(directory) / METADATA_FILE
    if not Path(directory).is_dir():
        raise RestoreError(f"{directory} is not a directory")
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise RestoreError(f"{directory} has no {METADATA_FILE}: not a backup, or one that did not finish") from None
    except (OSError, ValueError) as exc:
        raise RestoreError(f"{path} cannot be read: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise RestoreError(f"{path} is not the metadata of a pulp-registry backup")
    if document.get("format_version") != FORMAT_VERSION:
        raise RestoreError(f"{path} is format version {document.get('format_version')!r}; "
                           f"this version of pulp-registry reads version {FORMAT_VERSION}")
    return document


def read_content_list(directory: Path, metadata: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The digest list, checked against its SHA-256 in ``backup.json`` and for well-formed lines."""
    content = metadata.get("content") or {}
    path = _inside(directory, content.get("list", CONTENT_LIST))
    if not path.is_file() or _file_sha256(path) != content.get("list_sha256"):
        raise RestoreError(f"{path.name} is missing or changed since the backup (its SHA-256 differs)")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split(" ")
        if len(parts) != 3 or not is_digest(parts[0]) or not parts[1].isdigit() or parts[2] != content_path(parts[0]):
            raise RestoreError(f"{path.name} line {number} is not '<digest> <size> <path>': {line[:120]!r}")
        entries.append((parts[0], int(parts[1]), parts[2]))
    return entries


def check_backup(directory: Path, report: Report = _no_report) -> tuple[dict[str, Any], list[tuple[str, int, str]]]:
    """Check every file of the backup (database files, digest list, each content file's size and digest)."""
    directory = Path(directory)
    metadata = read_metadata(directory)
    for name, info in sorted((metadata.get("collections") or {}).items()):
        path = _inside(directory, info["file"])
        if not path.is_file() or _file_sha256(path) != info.get("sha256"):
            raise RestoreError(f"database file {info['file']} is missing or changed since the backup "
                               f"(its SHA-256 differs)")
    entries = read_content_list(directory, metadata)
    for digest, size, relative in entries:
        path = _inside(directory, relative)
        digester = Digester(digest_algorithm(digest))
        try:
            with open(path, "rb") as source:
                while chunk := source.read(CHUNK_SIZE):
                    digester.update(chunk)
        except FileNotFoundError:
            raise RestoreError(f"content file of {digest} is missing from the backup ({relative})") from None
        if digester.size != size:
            raise RestoreError(f"content file of {digest} is {digester.size} bytes, the backup lists {size}")
        if digester.digest != digest:
            raise RestoreError(f"content file of {digest} is damaged: its digest is {digester.digest}")
    report(f"backup checked: {len(metadata.get('collections') or {})} collections, {len(entries)} content files, "
           f"made {metadata.get('created')} by pulp-registry {metadata.get('registry_version')}")
    return metadata, entries


def what_is_there(services: Any) -> list[str]:
    """What makes the target not empty (empty list: an empty install)."""
    found = [f"{count} {name}" for name in ("repositories", "manifests", "blobs")
             if (count := services.db.database[name].count_documents({}))]
    if next(iter(services.storage.iter_content()), None) is not None:
        found.append("files in the content store")
    return found


def iter_documents(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as source:
        yield from bson.decode_file_iter(source, codec_options=_CODEC_OPTIONS)


def load_collection(database: Any, name: str, path: Path) -> int:
    """Replace the documents of collection ``name`` by those in ``path`` (the read-only switch stays)."""
    collection = database[name]
    collection.delete_many({"_id": {"$ne": maintenance.DOCUMENT_ID}} if name == "system" else {})
    count = 0
    batch: list[dict[str, Any]] = []
    for document in iter_documents(path):
        if name == "system" and document.get("_id") == maintenance.DOCUMENT_ID:
            continue
        batch.append(document)
        if len(batch) >= _INSERT_BATCH:
            collection.insert_many(batch, ordered=True)
            count, batch = count + len(batch), []
    if batch:
        collection.insert_many(batch, ordered=True)
        count += len(batch)
    return count


def _write(services: Any, directory: Path, metadata: dict[str, Any], entries: list[tuple[str, int, str]],
           report: Report) -> RestoreResult:
    """Content first (through the content store's verified writes), then the collections."""
    from pulp_registry.roles import ensure_builtin_roles

    db = services.db
    for done, (digest, size, relative) in enumerate(entries, 1):
        with open(directory / relative, "rb") as source:
            services.storage.put_stream(source, digest, size)
        if done % 1000 == 0:
            report(f"content: {done}/{len(entries)} files")
    content_bytes = sum(size for _digest, size, _path in entries)
    report(f"content: {len(entries)} files restored ({content_bytes / (1024 * 1024):.1f} MiB)")
    loaded: dict[str, int] = {}
    for name, info in sorted(metadata["collections"].items()):
        if name in NOT_RESTORED:
            report(f"database: {name}: not restored: {NOT_RESTORED[name]}")
            continue
        loaded[name] = load_collection(db.database, name, directory / info["file"])
        report(f"database: {name}: {loaded[name]} documents")
    db.ensure_indexes()
    ensure_builtin_roles(db)
    return RestoreResult(loaded, len(entries), content_bytes, count_summary(db))


def _publish(services: Any, result: RestoreResult, names_before: set[str], report: Report) -> None:
    """Publish every repository that was published; unpublish those of the target the backup lacks.

    A tree of an older format is upgraded first (as ``republish --all`` does), so the publishes are accepted.
    """
    from pulp_registry.publish import PublishError, publish_repository, unpublish_repository
    from pulp_registry.publish_switch import upgrade_tree

    db = services.db
    if upgrade_tree(Path(services.settings.published_dir)) is not None:
        report("published tree upgraded to the current format")
    for repo in db.repositories.find({"last_published": {"$ne": None}}, {"name": 1}).sort("name", 1):
        try:
            publish_repository(services, repo["_id"])
            result.published.append(repo["name"])
        except PublishError as exc:
            result.publish_failures.append(f"{repo['name']}: {exc}")
            report(f"publish of {repo['name']} failed: {exc}")
    report(f"published {len(result.published)} repositories")
    for name in sorted(names_before - {repo["name"] for repo in db.repositories.find({}, {"name": 1})}):
        unpublish_repository(services.settings, name)
        report(f"unpublished {name} (not in the backup)")


def restore(services: Any, directory: Path, *, force: bool = False, report: Report = _no_report) -> RestoreResult:
    """Restore the backup in ``directory``; see the module docstring.

    The registry is read-only while it works (unless it was already). A failure once
    writing has begun leaves the install partly restored: the error says to run again with ``force``.
    """
    directory = Path(directory)
    db = services.db
    metadata, entries = check_backup(directory, report)
    there = what_is_there(services)
    if there and not force:
        raise RestoreError(f"the target is not empty ({', '.join(there)}): restore into a new install, "
                           f"or give --force to replace its database")
    names_before = {repo["name"] for repo in db.repositories.find({}, {"name": 1})}
    switched = maintenance.enter_read_only(db, READ_ONLY_REASON)
    try:
        try:
            result = _write(services, directory, metadata, entries, report)
            _publish(services, result, names_before, report)
        except Exception as exc:  # noqa: BLE001 - any failure here leaves a partial restore behind
            raise RestoreError(f"{exc}; the install is now partly restored: run the restore again with "
                               f"--force") from exc
    finally:
        if switched:
            maintenance.leave_read_only(db)
    return result
