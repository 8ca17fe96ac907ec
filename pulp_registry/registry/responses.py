"""Responses of the push endpoints, so each protocol header is set in one place.

``Docker-Distribution-API-Version`` is added to every ``/v2/`` response by the
app (``pulp_registry.app``); errors are ``RegistryError`` raised and rendered
by ``registry_errors.error_response``.
"""
from __future__ import annotations

import json
from typing import Any, BinaryIO, Iterator

from flask import request
from werkzeug.wrappers import Response
from werkzeug.wsgi import wrap_file

from pulp_registry.public_urls import location
from pulp_registry.registry_errors import RangeInvalid
from pulp_registry.services import current_services

PREFIX = "/v2"


def upload_location(repo_name: str, upload_id: str) -> str:
    return _location(f"{PREFIX}/{repo_name}/blobs/uploads/{upload_id}")


def blob_location(repo_name: str, digest: str) -> str:
    return _location(f"{PREFIX}/{repo_name}/blobs/{digest}")


def manifest_location(repo_name: str, digest: str) -> str:
    return _location(f"{PREFIX}/{repo_name}/manifests/{digest}")


def _location(path: str) -> str:
    """Relative, or under ``api_public_url`` when set (see ``pulp_registry.public_urls``)."""
    return location(current_services().settings, path)


def upload_range(size: int) -> str:
    """The protocol's inclusive ``Range`` of what a session holds: ``0-0`` for nothing yet."""
    return f"0-{max(size - 1, 0)}"


def upload_headers(repo_name: str, upload_id: str, size: int) -> dict[str, str]:
    return {"Location": upload_location(repo_name, upload_id), "Range": upload_range(size),
            "Docker-Upload-UUID": upload_id, "Blob-Upload-Session-ID": upload_id}


def upload_response(repo_name: str, upload_id: str, size: int, status: int = 202) -> Response:
    """202 after a session starts or takes a chunk, 204 for a status query."""
    return empty(status, upload_headers(repo_name, upload_id, size))


def range_invalid(repo_name: str, upload_id: str, size: int, message: str) -> RangeInvalid:
    """416 that tells the client where the session really ends."""
    return RangeInvalid(message, detail={"range": upload_range(size)},
                        headers=upload_headers(repo_name, upload_id, size))


def blob_created(repo_name: str, digest: str) -> Response:
    return empty(201, {"Location": blob_location(repo_name, digest), "Docker-Content-Digest": digest})


def empty(status: int, headers: dict[str, str]) -> Response:
    response = Response(b"", status=status, headers=headers)
    response.headers["Content-Length"] = "0"
    return response


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def blob_response(stream_or_none: BinaryIO | None, digest: str, size: int,
                  byte_range: tuple[int, int] | None = None) -> Response:
    """A blob's bytes (or only its headers for HEAD), streamed from storage.

    With ``byte_range`` (inclusive, from ``oci.byte_range``) a GET answers 206 with those bytes
    and ``Content-Range``; the stream must be seekable (``storage.open`` gives a file).
    """
    headers = {"Docker-Content-Digest": digest, "Content-Length": str(size),
               "Content-Type": "application/octet-stream", "ETag": f'"{digest}"',
               "Cache-Control": "max-age=31536000", "Accept-Ranges": "bytes"}
    length, status = size, 200
    if stream_or_none is None:
        response = Response(b"", status=200, headers=headers)
    else:
        body: Any = wrap_file(request.environ, stream_or_none)
        if byte_range is not None:
            first, last = byte_range
            length, status = last - first + 1, 206
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
            stream_or_none.seek(first)
            body = _limited(stream_or_none, length)
        response = Response(body, status=status, headers=headers, direct_passthrough=True)
    response.headers["Content-Length"] = str(length)
    return response


def _limited(stream: BinaryIO, length: int, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
    """``length`` bytes of ``stream`` from where it stands, then close it."""
    try:
        while length > 0:
            chunk = stream.read(min(chunk_size, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        stream.close()


def content_response(body: bytes, media_type: str, digest: str, head: bool) -> Response:
    """A manifest: its exact bytes, its stored media type and its digest."""
    headers = {"Docker-Content-Digest": digest, "Content-Type": media_type, "ETag": f'"{digest}"'}
    response = Response(b"" if head else body, status=200, headers=headers)
    response.headers["Content-Type"] = media_type
    response.headers["Content-Length"] = str(len(body))
    return response
