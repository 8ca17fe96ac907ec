"""Content-addressed storage of blobs and manifests, behind a small driver interface.

Nothing becomes visible under its digest before its bytes were hashed and
checked: content is written to a temporary file, fsynced, verified, then
renamed into place. A digest is stored once, whatever repositories hold it.
Upload sessions (the registry protocol's chunked uploads) live beside the
content so that finishing one is a rename on the same filesystem.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO, Iterable, Protocol

from pulp_registry.oci import Digester, digest_algorithm, validate_digest
from pulp_registry.registry_errors import BlobUploadUnknown, DigestInvalid, SizeInvalid

CHUNK_SIZE = 1024 * 1024


class ContentStorage(Protocol):
    """What the registry needs from a content store."""

    def exists(self, digest: str) -> bool: ...
    def size(self, digest: str) -> int | None: ...
    def open(self, digest: str) -> BinaryIO: ...
    def read(self, digest: str) -> bytes: ...
    def local_path(self, digest: str) -> Path | None: ...
    def put_bytes(self, data: bytes, digest: str) -> int: ...
    def put_stream(self, stream: BinaryIO | Iterable[bytes], digest: str, size: int | None = None) -> int: ...
    def delete(self, digest: str) -> None: ...
    def upload_start(self) -> str: ...
    def upload_append(self, upload_id: str, stream: BinaryIO | Iterable[bytes]) -> int: ...
    def upload_size(self, upload_id: str) -> int: ...
    def upload_finish(self, upload_id: str, digest: str) -> int: ...
    def upload_cancel(self, upload_id: str) -> None: ...


def _chunks(stream: BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    if hasattr(stream, "read"):
        while chunk := stream.read(CHUNK_SIZE):  # type: ignore[union-attr]
            yield chunk
    else:
        for chunk in stream:  # type: ignore[union-attr]
            if chunk:
                yield chunk


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def put_stream(self, stream: BinaryIO | Iterable[bytes], digest: str, size: int | None = None) -> int:
        """Write, hash and verify ``stream``; keep it under ``digest`` only if it matches."""
        digester = Digester(digest_algorithm(digest))
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp_dir)
        tmp_path = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in _chunks(stream):
                    digester.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            self._verify(digester, digest, size)
            self._commit(tmp_path, digest)
        finally:
            tmp_path.unlink(missing_ok=True)
        return digester.size

    @staticmethod
    def _verify(digester: Digester, digest: str, size: int | None) -> None:
        if size is not None and digester.size != size:
            raise SizeInvalid(f"expected {size} bytes, received {digester.size}")
        if digester.digest != digest:
            raise DigestInvalid(f"content digest is {digester.digest}, not {digest}")

    def _commit(self, tmp_path: Path, digest: str) -> None:
        """Rename verified content into place; an existing copy is already the same bytes."""
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
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
        self._upload_path(upload_id).touch()
        return upload_id

    def upload_size(self, upload_id: str) -> int:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            raise BlobUploadUnknown(f"upload {upload_id} unknown") from None

    def upload_append(self, upload_id: str, stream: BinaryIO | Iterable[bytes]) -> int:
        """Append a chunk; return the upload's new size."""
        path = self._upload_path(upload_id)
        if not path.exists():
            raise BlobUploadUnknown(f"upload {upload_id} unknown")
        with path.open("ab") as upload:
            for chunk in _chunks(stream):
                upload.write(chunk)
            upload.flush()
            os.fsync(upload.fileno())
            return upload.tell()

    def upload_finish(self, upload_id: str, digest: str) -> int:
        """Verify the whole upload against ``digest`` and move it into place."""
        path = self._upload_path(upload_id)
        if not path.exists():
            raise BlobUploadUnknown(f"upload {upload_id} unknown")
        digester = Digester(digest_algorithm(digest))
        with path.open("rb") as upload:
            while chunk := upload.read(CHUNK_SIZE):
                digester.update(chunk)
        try:
            self._verify(digester, digest, None)
        except DigestInvalid:
            path.unlink(missing_ok=True)
            raise
        self._commit(path, digest)
        path.unlink(missing_ok=True)
        return digester.size

    def upload_cancel(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    def clear_tmp(self) -> None:
        """Remove temporary files left by a process that died mid-write."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)


def open_storage(driver: str, path: str) -> ContentStorage:
    if driver == "filesystem":
        return FilesystemStorage(path)
    raise ValueError(f"unknown storage driver {driver!r}")
