"""Content-addressed storage of blobs and manifests, behind a small driver interface.

Nothing becomes visible under its digest before its bytes were hashed and
checked: content is written to a temporary file, fsynced, verified, then
renamed into place. A digest is stored once, whatever repositories hold it.
Upload sessions (the registry protocol's chunked uploads) live beside the
content so that finishing one is a rename on the same filesystem.

Several API processes share the storage. A chunk is appended under an
exclusive ``flock`` of the session file, after checking that the file is still
the session's (not already taken by a finish). Finishing first renames the
session file to a private name no PATCH can open, then takes the same lock (so
a PATCH still writing ends first), hashes the file and checks that its size is
the hashed size before it becomes the content under its digest.

A full disk (``ENOSPC``, ``EDQUOT``) is logged and raised as ``StorageFull``;
no temporary file and no half-appended chunk is left behind.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Protocol

from pulp_registry.durable import fsync_dir, make_dirs
from pulp_registry.oci import Digester, digest_algorithm, is_digest, validate_digest
from pulp_registry.registry_errors import (BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid,
                                          RegistryError, SizeInvalid, StorageFull)

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
#: errno values that mean "no room left": the disk, or the user's quota on it.
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class SizeLimit:
    """At most ``max_bytes`` in a blob (a whole upload session); ``refuse()`` is the error that says which limit."""

    max_bytes: int
    refuse: Callable[[], RegistryError]

    def check(self, size: int) -> None:
        if size > self.max_bytes:
            raise self.refuse()


@dataclass(frozen=True)
class StoredFile:
    """A blob or manifest file in content storage, as orphan clean-up compares it to the database."""

    digest: str
    size: int
    #: ``st_mtime``: when the bytes were last written (a commit of bytes already there touches it).
    modified: float


@dataclass(frozen=True)
class Leftover:
    """A file no request will finish: a temporary file, an upload session file, a finish cut short."""

    path: Path
    #: ``session`` (``uploads/<id>``), ``finishing`` (``uploads/<id>.finishing-*``) or ``temporary``.
    kind: str
    size: int
    modified: float
    upload_id: str | None = None


class ContentStorage(Protocol):
    """What the registry needs from a content store."""

    def exists(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int | None: ...
    def open(self, digest: str) -> BinaryIO: ...
    def read(self, digest: str) -> bytes: ...
    def local_path(self, digest: str) -> Path | None: ...
    def put_bytes(self, data: bytes, digest: str) -> int: ...
    def put_stream(self, stream: BinaryIO | Iterable[bytes], digest: str, size: int | None = None,
                   limit: SizeLimit | None = None) -> int: ...
    def delete(self, digest: str) -> None: ...
    def upload_start(self) -> str: ...
    def upload_append(self, upload_id: str, stream: BinaryIO | Iterable[bytes], expected_start: int | None = None,
                      length: int | None = None, limit: SizeLimit | None = None) -> int: ...
    def upload_size(self, upload_id: str) -> int: ...
    def upload_finish(self, upload_id: str, digest: str) -> int: ...
    def upload_cancel(self, upload_id: str) -> None: ...
    def iter_content(self) -> Iterator["StoredFile"]: ...
    def remove_if_idle(self, digest: str, idle_since: float) -> int | None: ...
    def iter_leftovers(self) -> Iterator["Leftover"]: ...
    def remove_leftover(self, leftover: "Leftover", idle_since: float) -> int | None: ...


def _chunks(stream: BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    if hasattr(stream, "read"):
        while chunk := stream.read(CHUNK_SIZE):  # type: ignore[union-attr]
            yield chunk
    else:
        for chunk in stream:  # type: ignore[union-attr]
            if chunk:
                yield chunk


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FilesystemStorage:
    """Blobs at ``<root>/blobs/<algorithm>/<2 hex>/<hex>``, uploads at ``<root>/uploads/<id>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.blobs_dir = self.root / "blobs"
        self.uploads_dir = self.root / "uploads"
        self.tmp_dir = self.root / "tmp"
        for directory in (self.blobs_dir, self.uploads_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)

    # --- content --------------------------------------------------------------

    def path(self, digest: str) -> Path:
        algorithm, hexdigest = validate_digest(digest).split(":", 1)
        return self.blobs_dir / algorithm / hexdigest[:2] / hexdigest

    def local_path(self, digest: str) -> Path | None:
        path = self.path(digest)
        return path if path.exists() else None

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int | None:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        return self.path(digest).open("rb")

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def put_bytes(self, data: bytes, digest: str) -> int:
        return self.put_stream([data], digest, len(data))

    @contextlib.contextmanager
    def _full_storage_reported(self, what: str) -> Iterator[None]:
        """Turn ``ENOSPC``/``EDQUOT`` into ``StorageFull``, with a log line for the administrator."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in FULL_ERRNOS:
                raise
            log.error("content storage %s is full (%s) while %s; nothing of it was kept", self.root,
                      os.strerror(exc.errno), what)
            raise StorageFull(f"storage is full: the registry could not store {what}; nothing was kept, "
                              "push again once an administrator has freed space") from None

    def put_stream(self, stream: BinaryIO | Iterable[bytes], digest: str, size: int | None = None,
                   limit: SizeLimit | None = None) -> int:
        """Write, hash and verify ``stream``; keep it under ``digest`` only if it matches.

        A ``size`` (the request's Content-Length) over ``limit`` is refused before anything is
        read; a stream that grows past it is cut off. Nothing partial is kept either way.
        """
        if limit is not None and size is not None:
            limit.check(size)
        digester = Digester(digest_algorithm(digest))
        tmp_path: Path | None = None
        try:
            with self._full_storage_reported(f"blob {digest}"):
                fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir)
                tmp_path = Path(tmp_name)
                try:
                    for chunk in _chunks(stream):
                        digester.update(chunk)
                        if limit is not None:
                            limit.check(digester.size)
                        _write_all(fd, chunk)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._verify(digester, digest, size)
                self._commit(tmp_path, digest, digester.size)
        finally:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
        return digester.size

    @staticmethod
    def _verify(digester: Digester, digest: str, size: int | None) -> None:
        if size is not None and digester.size != size:
            raise SizeInvalid(f"expected {size} bytes, received {digester.size}")
        if digester.digest != digest:
            raise DigestInvalid(f"content digest is {digester.digest}, not {digest}")

    def _commit(self, verified_path: Path, digest: str, size: int) -> None:
        """Rename verified content (``size`` bytes) into place.

        An existing copy of the right size is the same bytes (it was verified when it was
        written); one of another size is damaged and is replaced atomically.
        """
        target = self.path(digest)
        try:
            existing_size: int | None = target.stat().st_size
        except FileNotFoundError:
            existing_size = None
        if existing_size == size:
            # The bytes were just written again: their age (what orphan clean-up's grace period
            # counts from) starts now, so a push re-using old orphaned content keeps it.
            with contextlib.suppress(FileNotFoundError):
                os.utime(target)
            return
        if existing_size is not None:
            log.warning("stored %s is %d bytes, not %d: replacing it with the verified copy",
                        digest, existing_size, size)
        make_dirs(target.parent)
        os.chmod(verified_path, 0o644)
        os.replace(verified_path, target)
        fsync_dir(target.parent)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    # --- upload sessions --------------------------------------------------------

    def _upload_path(self, upload_id: str) -> Path:
        try:
            uuid.UUID(upload_id)
        except (ValueError, AttributeError, TypeError):
            raise BlobUploadUnknown(f"upload {upload_id!r} unknown") from None
        return self.uploads_dir / upload_id

    def upload_start(self) -> str:
        upload_id = str(uuid.uuid4())
        with self._full_storage_reported("a new upload session"):
            self._upload_path(upload_id).touch()
        return upload_id

    def upload_size(self, upload_id: str) -> int:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None

    @staticmethod
    def _still_named(fd: int, path: Path) -> bool:
        """The open file ``fd`` is still the one at ``path`` (a finish renames it away)."""
        try:
            named = path.stat()
        except FileNotFoundError:
            return False
        opened = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)

    def upload_append(self, upload_id: str, stream: BinaryIO | Iterable[bytes], expected_start: int | None = None,
                      length: int | None = None, limit: SizeLimit | None = None) -> int:
        """Append a chunk; return the upload's new size.

        ``expected_start`` (from a Content-Range) must be the session's size when the chunk is
        written, else ``RangeInvalid``; ``length`` (the Content-Length) and the bytes received are
        held to ``limit``. A chunk that fails for any reason is cut off again: the session keeps
        what it had.
        """
        path = self._upload_path(upload_id)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self._still_named(fd, path):
                raise BlobUploadUnknown(f"upload {upload_id} unknown (it was finished or cancelled)")
            start = os.fstat(fd).st_size
            if expected_start is not None and expected_start != start:
                raise RangeInvalid(f"chunk starts at byte {expected_start}, but the upload holds {start} bytes")
            if limit is not None and length is not None:
                limit.check(start + length)
            size = start
            try:
                with self._full_storage_reported(f"a chunk of upload {upload_id}"):
                    for chunk in _chunks(stream):
                        size += len(chunk)
                        if limit is not None:
                            limit.check(size)
                        _write_all(fd, chunk)
                    os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, start)
                raise
            return size
        finally:
            os.close(fd)  # releases the lock

    def upload_finish(self, upload_id: str, digest: str) -> int:
        """Verify the whole upload against ``digest`` and move it into place.

        The session file is first renamed to a private name, so no PATCH can open it any
        more; a PATCH that opened it before holds its lock, which is waited for. What is
        hashed is exactly what becomes the content: the size is checked again under the lock.
        """
        path = self._upload_path(upload_id)
        digester = Digester(digest_algorithm(digest))
        private_path = self.uploads_dir / f"{upload_id}.finishing-{uuid.uuid4().hex}"
        try:
            os.rename(path, private_path)
        except FileNotFoundError:
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None
        try:
            fd = os.open(private_path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                while chunk := os.read(fd, CHUNK_SIZE):
                    digester.update(chunk)
                if os.fstat(fd).st_size != digester.size:
                    raise BlobUploadInvalid(f"upload {upload_id} changed while it was being finished")
                self._verify(digester, digest, None)
                with self._full_storage_reported(f"blob {digest}"):
                    self._commit(private_path, digest, digester.size)
            finally:
                os.close(fd)
        finally:
            private_path.unlink(missing_ok=True)
        return digester.size

    def upload_cancel(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    # --- orphan clean-up (pulp_registry.orphans) ------------------------------------

    def iter_content(self) -> Iterator[StoredFile]:
        """Every blob and manifest file; dot names (temporary files) are leftovers, not content."""
        for algorithm_dir in sorted(self.blobs_dir.iterdir()):
            if not algorithm_dir.is_dir() or algorithm_dir.name.startswith("."):
                continue
            for path in sorted(algorithm_dir.rglob("*")):
                digest = f"{algorithm_dir.name}:{path.name}"
                if path.name.startswith(".") or not is_digest(digest):
                    continue
                try:
                    stat = path.lstat()
                except FileNotFoundError:
                    continue
                if path.is_file() and path.parent.name == path.name[:2]:
                    yield StoredFile(digest, stat.st_size, stat.st_mtime)

    def remove_if_idle(self, digest: str, idle_since: float) -> int | None:
        """Unlink the file of ``digest`` unless it was written at or after ``idle_since``; its size, or None.

        A reader that opened it keeps reading it to the end (POSIX unlink semantics).
        """
        return _unlink_if_idle(self.path(digest), idle_since)

    def iter_leftovers(self) -> Iterator[Leftover]:
        """Upload session files, finishes cut short, and temporary files (``tmp/``, dot names in ``blobs/``)."""
        candidates: list[tuple[Path, str, str | None]] = []
        for path in sorted(self.uploads_dir.iterdir()):
            upload_id, finishing, _ = path.name.partition(".finishing-")
            candidates.append((path, "finishing" if finishing else "session", upload_id))
        for path in sorted(self.tmp_dir.rglob("*")):
            candidates.append((path, "temporary", None))
        for path in sorted(self.blobs_dir.rglob(".*")):
            candidates.append((path, "temporary", None))
        for path, kind, upload_id in candidates:
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            if not path.is_dir():
                yield Leftover(path, kind, stat.st_size, stat.st_mtime, upload_id)

    def remove_leftover(self, leftover: Leftover, idle_since: float) -> int | None:
        """Unlink ``leftover`` if nobody wrote it since ``idle_since`` and nobody holds it; its size, or None.

        Upload files are taken under the same exclusive ``flock`` a PATCH or a finish holds while
        it works: a locked file is in use and stays. A PATCH that opens the session afterwards
        finds it gone (``BlobUploadUnknown``).
        """
        path = leftover.path
        if leftover.kind == "temporary":
            return _unlink_if_idle(path, idle_since)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return 0
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None   # a PATCH or a finish is working on it
            if not self._still_named(fd, path):
                return 0
            stat = os.fstat(fd)
            if stat.st_mtime >= idle_since:
                return None
            path.unlink(missing_ok=True)
            return stat.st_size
        finally:
            os.close(fd)

    def clear_tmp(self) -> None:
        """Remove temporary files left by a process that died mid-write."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)


def _unlink_if_idle(path: Path, idle_since: float) -> int | None:
    """Unlink ``path`` unless it was written at or after ``idle_since``; its size (0 if gone), or None if kept."""
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return 0
    if stat.st_mtime >= idle_since:
        return None
    path.unlink(missing_ok=True)
    return stat.st_size


def open_storage(settings: Any) -> ContentStorage:
    """The driver ``storage_driver`` names; ``s3`` checks its bucket now (a ``ConfigError`` naming the key)."""
    if settings.storage_driver == "filesystem":
        return FilesystemStorage(settings.storage_path)
    if settings.storage_driver == "s3":
        from pulp_registry.s3_storage import S3Storage

        return S3Storage.from_settings(settings)
    raise ValueError(f"unknown storage driver {settings.storage_driver!r}")
