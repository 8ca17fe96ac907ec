"""Blobs published to S3 (``blob_storage: s3``): a redirect to a pre-signed URL, or the object streamed.

The admin side's ``storage_driver: s3`` copies every published config and
layer to ``<s3_prefix>published/blobs/<algorithm>/<hex>`` (``pulp_registry.s3_client``
owns the layout). Crane answers a blob GET, after the access checks every
blob GET has, with a ``307`` to a GET URL of that key signed for
``s3_url_expiry`` seconds: the URL carries its own short-lived authorization,
so this works for protected repositories with token auth too. With
``blob_serving: stream`` Crane reads the object and passes it on (one byte
range as asked). Manifests are not in the bucket: the view serves a digest
that is a manifest of the repository from the local tree.

boto3 is imported only when the first S3 blob is asked for (and checked at
start-up by ``CraneSettings``): Crane with ``blob_storage: filesystem`` runs
without it.
"""
from __future__ import annotations

import functools
from typing import Any, Iterator

from flask import Response

from pulp_registry import oci
from pulp_registry.registry_errors import BlobUnknown
from pulp_registry.s3_client import S3Location, check_bucket, is_missing, make_client

from crane.config import CraneSettings

#: Bytes read from S3 at a time while streaming.
STREAM_CHUNK = 1024 * 1024
#: A redirect to a URL that expires must not be cached as the blob's answer.
REDIRECT_CACHE_CONTROL = "private, no-store"


class S3Blobs:
    """One boto3 client per Crane process (clients are thread-safe) and the settings it serves with."""

    def __init__(self, settings: CraneSettings) -> None:
        self.location = S3Location.from_settings(settings)
        self.expiry = settings.s3_url_expiry
        self.client = make_client(self.location)

    def signed_url(self, digest: str) -> str:
        """A GET URL of the published ``digest``, valid for ``s3_url_expiry`` seconds."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.location.bucket, "Key": self.location.published_key(digest)},
            ExpiresIn=self.expiry)

    def redirect(self, digest: str, headers: dict[str, str]) -> Response:
        return Response(status=307, headers={**headers, "Location": self.signed_url(digest),
                                             "Cache-Control": REDIRECT_CACHE_CONTROL})

    def stream(self, digest: str, size: int, headers: dict[str, str], range_header: str | None) -> Response:
        """The object's bytes (``206`` with one range when asked, as the filesystem path answers)."""
        from botocore.exceptions import ClientError

        byte_range = oci.byte_range(range_header, size)   # 416 for a malformed or unsatisfiable one
        request: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.location.published_key(digest)}
        if byte_range is not None:
            request["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        try:
            body = self.client.get_object(**request)["Body"]
        except ClientError as exc:
            if is_missing(exc):
                raise BlobUnknown(f"blob {digest} is not available", detail={"digest": digest}) from None
            raise
        response = Response(_chunks(body), status=200 if byte_range is None else 206, headers=headers,
                            content_type="application/octet-stream", direct_passthrough=True)
        if byte_range is None:
            response.headers["Content-Length"] = str(size)
        else:
            first, last = byte_range
            response.headers["Content-Length"] = str(last - first + 1)
            response.headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        return response


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        while chunk := body.read(STREAM_CHUNK):
            yield chunk
    finally:
        body.close()


def check_at_start(settings: CraneSettings) -> None:
    """For Crane's start-up: a one-line ``ConfigError`` naming ``s3_bucket``/``s3_endpoint_url`` unless the
    bucket answers (nothing to check with ``blob_storage: filesystem``)."""
    if settings.blob_storage == "s3":
        blobs = s3_blobs(settings)
        check_bucket(blobs.client, blobs.location)


@functools.lru_cache(maxsize=4)
def s3_blobs(settings: CraneSettings) -> S3Blobs:
    """The ``S3Blobs`` of these settings, made once (settings are frozen, so they are the key)."""
    return S3Blobs(settings)
