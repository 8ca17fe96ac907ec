"""``pulp-registry backup``: a consistent copy of the database and the content store in one directory.

A backup switches the registry to read-only maintenance mode (``maintenance.py``),
waits for the tasks that are waiting or running to end, dumps every MongoDB
collection as BSON (``bson.encode`` of each document, so datetimes, binary
values and ObjectIds come back exactly), then copies every content file
(blobs and manifests), hashing each as it goes, and writes the digest list.
Database first, content second: a document names content only once its bytes
were stored, so every digest the dump names is in the copy. Crane keeps
serving throughout (it reads only the published tree, which is not backed up:
a restore republishes).

Layout of a backup directory (format 1)::

    backup.json               metadata, written last and atomically: without it the backup is incomplete
    database/<collection>.bson  the documents of one collection, one BSON document after the other
    content.txt               one line per content file: "<digest> <size> <path>"
    content/<algorithm>/<2 hex>/<hex>  the bytes of each blob and manifest

``backup.json`` holds the format and its version, the time, the registry's
version, the SHA-256 of every other file it names, and counts. The read-only
switch itself (``system`` document ``read_only``) is not part of a backup.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import bson

from pulp_registry import maintenance
from pulp_registry.db import INDEXES, isoformat, utcnow
from pulp_registry.durable import fsync_dir, make_dirs
from pulp_registry.oci import Digester, digest_algorithm
from pulp_registry.tasks import NOT_FINAL

FORMAT = "pulp-registry-backup"
FORMAT_VERSION = 1
METADATA_FILE = "backup.json"
DATABASE_DIR = "database"
CONTENT_DIR = "content"
CONTENT_LIST = "content.txt"
READ_ONLY_REASON = "backup"
CHUNK_SIZE = 1024 * 1024
#: Seconds between two progress lines of a long step.
PROGRESS_SECONDS = 2.0
#: ``os.link`` failures that mean "cannot link here": the file is copied instead.
_NO_LINK_ERRNOS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}

#: The collections whose counts a backup and a restore report (what a person checks them by).
SUMMARY_COLLECTIONS = ("repositories", "tags", "manifests", "blobs", "users")
#: What progress lines go to (``click.echo`` in the command).
Report = Callable[[str], None]


class BackupError(Exception):
    """The backup cannot be made (or finished); the message says why in one line."""


@dataclass
class BackupResult:
    directory: Path
    collections: dict[str, int]
    content_files: int
    content_bytes: int
    #: Content files whose bytes do not match their digest: left out, named in ``backup.json``.
    damaged: list[str] = field(default_factory=list)
    #: Read-only mode was on before the backup and stays on.
    read_only_kept: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {name: self.collections.get(name, 0) for name in SUMMARY_COLLECTIONS}


def registry_version() -> str:
    try:
        return package_metadata.version("pulp-registry")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def content_path(digest: str) -> str:
    """Path of a content file inside a backup directory (the layout of the content store)."""
    algorithm, hexdigest = digest.split(":", 1)
    return f"{CONTENT_DIR}/{algorithm}/{hexdigest[:2]}/{hexdigest}"


def collection_names(database: Any) -> list[str]:
    """Every collection the registry has (``db.INDEXES``) and any other one the database holds."""
    names = set(INDEXES)
    names.update(name for name in database.list_collection_names() if not name.startswith("system."))
    return sorted(names)


def _no_report(_line: str) -> None:
    pass


def _size_text(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _write_durable(path: Path, data: bytes) -> None:
    """Temp file beside ``path``, fsync, rename, fsync the directory."""
    tmp = path.parent / f".{path.name}.tmp"
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


# --- steps ------------------------------------------------------------------------------------


def prepare_directory(directory: Path) -> None:
    """``directory`` must not exist or be empty: a backup never overwrites anything."""
    if directory.exists() or directory.is_symlink():
        if not directory.is_dir():
            raise BackupError(f"{directory} exists and is not a directory")
        if any(directory.iterdir()):
            raise BackupError(f"{directory} is not empty: a backup goes into a new or empty directory")
    make_dirs(directory)


def wait_for_tasks(db: Any, timeout: float, report: Report = _no_report, interval: float = 0.5) -> None:
    """Poll until no task is waiting or running; ``BackupError`` naming them after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    announced: int | None = None
    while True:
        active = list(db.tasks.find({"state": {"$in": NOT_FINAL}}, {"task_type": 1, "state": 1}).limit(20))
        if not active:
            return
        names = ", ".join(f"{task['task_type']} {task['_id']} ({task['state']})" for task in active[:5])
        if time.monotonic() >= deadline:
            raise BackupError(f"tasks still waiting or running after {timeout:g} s: {names}; "
                              f"no backup was made (try again, or give a longer --timeout)")
        if announced != len(active):
            report(f"waiting for {len(active)}{'+' if len(active) == 20 else ''} tasks to end: {names}")
            announced = len(active)
        time.sleep(interval)


def dump_collection(collection: Any, path: Path, query: dict[str, Any]) -> tuple[int, str]:
    """Write the documents of ``collection`` matching ``query`` to ``path``; their count and the file's SHA-256."""
    file_hash = hashlib.sha256()
    count = 0
    with open(path, "wb") as out:
        for document in collection.find(query):
            data = bson.encode(document)
            file_hash.update(data)
            out.write(data)
            count += 1
        out.flush()
        os.fsync(out.fileno())
    return count, file_hash.hexdigest()


def dump_database(db: Any, directory: Path, report: Report = _no_report) -> dict[str, dict[str, Any]]:
    """One BSON file per collection under ``database/``; what ``backup.json`` says about each."""
    database_dir = directory / DATABASE_DIR
    make_dirs(database_dir)
    dumped: dict[str, dict[str, Any]] = {}
    for name in collection_names(db.database):
        # The switch the backup itself turned on is the state of this install, not of its data.
        query = {"_id": {"$ne": maintenance.DOCUMENT_ID}} if name == "system" else {}
        relative = f"{DATABASE_DIR}/{name}.bson"
        count, sha256 = dump_collection(db.database[name], directory / relative, query)
        dumped[name] = {"file": relative, "documents": count, "sha256": sha256}
        report(f"database: {name}: {count} documents")
    fsync_dir(database_dir)
    return dumped


def _copy_hashing(source: BinaryIO, target: Path, digester: Digester) -> None:
    with source, open(target, "wb") as out:
        while chunk := source.read(CHUNK_SIZE):
            digester.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _hash_file(path: Path, digester: Digester) -> None:
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK_SIZE):
            digester.update(chunk)


class _ContentCopier:
    """Copies (or hard-links) content files into the backup, hashing each one."""

    def __init__(self, storage: Any, directory: Path, link: bool, report: Report) -> None:
        self.storage = storage
        self.directory = directory
        self.link = link
        self.report = report
        self.directories: set[Path] = set()

    def _link(self, digest: str, target: Path) -> bool:
        source = self.storage.local_path(digest)
        if not self.link or source is None:
            return False
        try:
            os.link(source, target)
            return True
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            self.report(f"content: cannot hard-link into {self.directory} ({os.strerror(exc.errno)}): copying")
            self.link = False
            return False

    def copy(self, digest: str) -> tuple[int, bool] | None:
        """Put the bytes of ``digest`` into the backup; (size, matches its digest), or None if it vanished."""
        target = self.directory / content_path(digest)
        if target.parent not in self.directories:
            make_dirs(target.parent)
            self.directories.add(target.parent)
        digester = Digester(digest_algorithm(digest))
        try:
            if self._link(digest, target):
                _hash_file(target, digester)
            else:
                _copy_hashing(self.storage.open(digest), target, digester)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            return None
        if digester.digest != digest:
            target.unlink(missing_ok=True)
        return digester.size, digester.digest == digest


def copy_content(storage: Any, directory: Path, link: bool = False,
                 report: Report = _no_report) -> tuple[list[tuple[str, int, str]], list[str]]:
    """Copy every content file; the digest list entries ``(digest, size, path)`` and the damaged digests."""
    stored = [stored.digest for stored in storage.iter_content()]
    copier = _ContentCopier(storage, directory, link, report)
    entries: list[tuple[str, int, str]] = []
    damaged: list[str] = []
    copied_bytes = 0
    last_report = time.monotonic()
    for done, digest in enumerate(stored, 1):
        copied = copier.copy(digest)
        if copied is not None:
            size, intact = copied
            if intact:
                entries.append((digest, size, content_path(digest)))
                copied_bytes += size
            else:
                damaged.append(digest)
                report(f"warning: {digest}: its bytes do not match its digest; left out of the backup")
        if time.monotonic() - last_report >= PROGRESS_SECONDS or done == len(stored):
            report(f"content: {done}/{len(stored)} files, {_size_text(copied_bytes)}")
            last_report = time.monotonic()
    for parent in sorted(copier.directories, key=lambda path: len(path.parts), reverse=True):
        fsync_dir(parent)
    return entries, damaged


def write_content_list(directory: Path, entries: Iterable[tuple[str, int, str]]) -> str:
    """``content.txt``, one ``<digest> <size> <path>`` line per file; its SHA-256."""
    data = "".join(f"{digest} {size} {path}\n" for digest, size, path in entries).encode()
    _write_durable(directory / CONTENT_LIST, data)
    return hashlib.sha256(data).hexdigest()


def count_summary(db: Any) -> dict[str, int]:
    """What a person checks a backup or a restore by."""
    return {name: db.database[name].count_documents({}) for name in SUMMARY_COLLECTIONS}


# --- the whole backup ------------------------------------------------------------------------


def backup(services: Any, directory: Path, *, timeout: float = 300.0, link: bool = False,
           report: Report = _no_report, settle_seconds: float | None = None) -> BackupResult:
    """Back the registry up into ``directory`` (new or empty) under read-only mode; see the module docstring.

    Read-only mode is switched off at the end, also on failure, unless it was on before.
    ``settle_seconds`` (default: how long processes cache the switch) passes before tasks are
    counted, so that every process refuses changes by then.
    """
    db = services.db
    directory = Path(directory)
    prepare_directory(directory)
    switched = maintenance.enter_read_only(db, READ_ONLY_REASON)
    report("read-only mode on (reason: backup)" if switched else
           "read-only mode was on already: it stays on after the backup")
    try:
        time.sleep(maintenance.CACHE_SECONDS + 0.1 if settle_seconds is None else settle_seconds)
        wait_for_tasks(db, timeout, report)
        started = utcnow()
        collections = dump_database(db, directory, report)
        entries, damaged = copy_content(services.storage, directory, link, report)
        list_sha256 = write_content_list(directory, entries)
        content_bytes = sum(size for _digest, size, _path in entries)
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": isoformat(utcnow()),
            "started": isoformat(started),
            "registry_version": registry_version(),
            "database_name": db.database.name,
            "collections": collections,
            "content": {"list": CONTENT_LIST, "list_sha256": list_sha256, "files": len(entries),
                        "bytes": content_bytes, "linked": link},
            "damaged": damaged,
            "counts": {name: collections.get(name, {}).get("documents", 0) for name in SUMMARY_COLLECTIONS},
        }
        _write_durable(directory / METADATA_FILE, (json.dumps(document, indent=1) + "\n").encode())
    finally:
        if switched:
            maintenance.leave_read_only(db)
            report("read-only mode off")
    return BackupResult(directory, {name: info["documents"] for name, info in collections.items()},
                        len(entries), content_bytes, damaged, read_only_kept=not switched)
