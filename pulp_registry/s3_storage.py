"""Content storage in an S3 bucket (``storage_driver: s3``), behind the same interface as the filesystem.

Bytes are received and verified on local disk first, exactly as the filesystem
driver does it (a temporary file for a monolithic push, an upload session file
for chunked PATCHes, under ``storage_path``): only content whose digest and
size were checked is uploaded, with boto3's managed transfer (multipart for big
blobs), and the local file is removed. So nothing is ever visible in the bucket
under a digest its bytes do not have.

Published configs and layers are server-side copies of the content objects
(``publish_blob``) under their own keys, so removing orphaned content never
breaks a pull of a published version: the same reason the filesystem tree
holds hard links. Orphan clean-up takes S3's ``LastModified`` as a file's
mtime. S3 has no conditional delete on a date: between the check and the
delete a push re-writing the same object may lose it; the grace period (an
hour by default) is what covers that window, as it covers the push's own steps.
"""
from __future__ import annotations

import io
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from pulp_registry.s3_client import (CONTENT_DIR, PUBLISHED_BLOBS_DIR, S3Location, check_bucket, is_missing,
                                     make_client)
from pulp_registry.storage import FilesystemStorage, Leftover, SizeLimit, StoredFile

log = logging.getLogger(__name__)

#: Blobs bigger than this go up in parts of this size (boto3 runs several parts at once).
MULTIPART_CHUNK = 64 * 1024 * 1024


def _transfer_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_CHUNK, multipart_chunksize=MULTIPART_CHUNK)


class _LocalStaging(FilesystemStorage):
    """The filesystem driver's uploads and temporary files; its commit uploads to the bucket instead of renaming."""

    def __init__(self, root: str | Path, bucket: "S3Storage") -> None:
        super().__init__(root)
        self._bucket = bucket

    def _commit(self, verified_path: Path, digest: str, size: int) -> None:
        self._bucket.store_verified(verified_path, digest, size)


class S3Storage:
    """Blobs and manifests at ``<s3_prefix>content/<algorithm>/<hex>``; uploads staged under ``storage_path``."""

    def __init__(self, location: S3Location, staging_root: str | Path, client: Any = None) -> None:
        self.location = location
        self.client = client if client is not None else make_client(location)
        check_bucket(self.client, location)
        self.staging = _LocalStaging(staging_root, self)

    @classmethod
    def from_settings(cls, settings: Any) -> "S3Storage":
        return cls(S3Location.from_settings(settings), settings.storage_path)

    @property
    def bucket(self) -> str:
        return self.location.bucket

    # --- content --------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise

    def local_path(self, digest: str) -> Path | None:
        return None

    def exists(self, digest: str) -> bool:
        return self._head(self.location.content_key(digest)) is not None

    def size(self, digest: str) -> int | None:
        head = self._head(self.location.content_key(digest))
        return None if head is None else int(head["ContentLength"])

    def open(self, digest: str) -> BinaryIO:
        """The object as a read-only stream (seekable: a ``Range`` of the admin side's blob GET seeks);
        ``FileNotFoundError`` as the filesystem would say."""
        return _ObjectReader(self, self.location.content_key(digest), digest)  # type: ignore[return-value]

    def get_body(self, key: str, what: str, start: int = 0) -> Any:
        """The streaming body of ``key`` from byte ``start``; ``FileNotFoundError`` if it is not there."""
        from botocore.exceptions import ClientError

        extra = {"Range": f"bytes={start}-"} if start else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                raise FileNotFoundError(f"{what} is not in {self.location.where()}") from None
            raise

    def read(self, digest: str) -> bytes:
        with self.open(digest) as body:
            return body.read()

    def put_bytes(self, data: bytes, digest: str) -> int:
        return self.staging.put_stream([data], digest, len(data))

    def put_stream(self, stream: BinaryIO | Iterable[bytes], digest: str, size: int | None = None,
                   limit: SizeLimit | None = None) -> int:
        """Received into a local temporary file, verified, then uploaded (``store_verified``)."""
        return self.staging.put_stream(stream, digest, size, limit)

    def store_verified(self, path: Path, digest: str, size: int) -> None:
        """Upload ``path``, whose bytes were checked against ``digest``, as that digest's content.

        An object already there is overwritten with the same bytes: its ``LastModified`` (what
        orphan clean-up's grace period counts from) starts again, as a filesystem touch would.
        """
        self.client.upload_file(str(path), self.bucket, self.location.content_key(digest),
                                ExtraArgs={"ContentType": "application/octet-stream"}, Config=_transfer_config())
        log.debug("stored %s (%d bytes) in %s", digest, size, self.location.where())

    def delete(self, digest: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.location.content_key(digest))

    # --- upload sessions: on local disk, as the filesystem driver keeps them ----------

    def upload_start(self) -> str:
        return self.staging.upload_start()

    def upload_append(self, upload_id: str, stream: BinaryIO | Iterable[bytes], expected_start: int | None = None,
                      length: int | None = None, limit: SizeLimit | None = None) -> int:
        return self.staging.upload_append(upload_id, stream, expected_start, length, limit)

    def upload_size(self, upload_id: str) -> int:
        return self.staging.upload_size(upload_id)

    def upload_finish(self, upload_id: str, digest: str) -> int:
        """Verified on disk (the session file, under its lock), then uploaded before it is removed."""
        return self.staging.upload_finish(upload_id, digest)

    def upload_cancel(self, upload_id: str) -> None:
        self.staging.upload_cancel(upload_id)

    # --- orphan clean-up ------------------------------------------------------------

    def _objects(self, directory: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(digest, listing entry) of every object under ``<prefix><directory>``; stray keys are skipped."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.location.prefix + directory):
            for entry in page.get("Contents", []):
                digest = self.location.digest_of(entry["Key"], directory)
                if digest is not None:
                    yield digest, entry

    def iter_content(self) -> Iterator[StoredFile]:
        for digest, entry in self._objects(CONTENT_DIR):
            yield StoredFile(digest, int(entry["Size"]), _timestamp(entry["LastModified"]))

    def _remove_key_if_idle(self, key: str, idle_since: float) -> int | None:
        head = self._head(key)
        if head is None:
            return 0
        if _timestamp(head["LastModified"]) >= idle_since:
            return None
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return int(head["ContentLength"])

    def remove_if_idle(self, digest: str, idle_since: float) -> int | None:
        """Delete the object of ``digest`` unless it was written at or after ``idle_since``; its size, or None."""
        return self._remove_key_if_idle(self.location.content_key(digest), idle_since)

    def iter_leftovers(self) -> Iterator[Leftover]:
        return self.staging.iter_leftovers()

    def remove_leftover(self, leftover: Leftover, idle_since: float) -> int | None:
        return self.staging.remove_leftover(leftover, idle_since)

    def clear_tmp(self) -> None:
        self.staging.clear_tmp()

    # --- published configs and layers (publish.py, orphans.py) ---------------------------

    def publish_blob(self, digest: str) -> bool:
        """Copy the content of ``digest`` to its published key (server-side); False if it is not stored.

        A published object already there is kept: it holds the same bytes.
        """
        from botocore.exceptions import ClientError

        target = self.location.published_key(digest)
        if self._head(target) is not None:
            return True
        source = {"Bucket": self.bucket, "Key": self.location.content_key(digest)}
        try:
            self.client.copy(source, self.bucket, target, Config=_transfer_config())
        except ClientError as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def iter_published(self) -> Iterator[StoredFile]:
        for digest, entry in self._objects(PUBLISHED_BLOBS_DIR):
            yield StoredFile(digest, int(entry["Size"]), _timestamp(entry["LastModified"]))

    def remove_published_if_idle(self, digest: str, idle_since: float) -> int | None:
        return self._remove_key_if_idle(self.location.published_key(digest), idle_since)


class _ObjectReader(io.RawIOBase):
    """A GET of one object, read in order; ``seek`` starts a ranged GET at the new position."""

    def __init__(self, storage: S3Storage, key: str, what: str) -> None:
        super().__init__()
        self._storage, self._key, self._what = storage, key, what
        self._body = storage.get_body(key, what)   # a missing object fails here, as open() would
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._body.read() if size is None or size < 0 else self._body.read(size)
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence != io.SEEK_SET:
            raise io.UnsupportedOperation("only absolute seeks")
        if offset != self._position:
            self._body.close()
            self._body = self._storage.get_body(self._key, self._what, offset)
            self._position = offset
        return offset

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _timestamp(value: datetime | str) -> float:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.timestamp()
