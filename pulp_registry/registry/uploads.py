"""Blob uploads: ``/v2/<name>/blobs/uploads/`` (start, monolithic, mount) and the session URL.

A session is opened by POST, takes chunks by PATCH (with ``Content-Range``, or
streamed without it as docker and skopeo do), and ends with PUT ``?digest=``,
which verifies the whole blob before it becomes visible. The repository is
created when the first blob or manifest lands, not when a session opens, so an
abandoned upload leaves no empty repository behind.

A session belongs to the repository and the user that opened it; anyone else
gets ``BLOB_UPLOAD_UNKNOWN``. Chunks arrive in order (416 otherwise, checked
again under the session's lock), and blobs are held to ``max_blob_size`` and
``storage_quota`` (413) before anything is stored.
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import content, oci
from pulp_registry.access import PULL, PUSH, auth_required, current_caller, may
from pulp_registry.registry.responses import blob_created, empty, range_invalid, upload_response
from pulp_registry.registry_errors import DigestInvalid, RangeInvalid
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.services import current_services

blueprint = Blueprint("registry_uploads", __name__)

CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def _has_body() -> bool:
    """A request body is there if it says so, or if the server de-chunked one for us."""
    if request.content_length is not None:
        return request.content_length > 0
    return bool(request.environ.get("wsgi.input_terminated"))


def _check_content_range(name: str, upload_id: str, size: int) -> int | None:
    """A chunk with a ``Content-Range`` must start where the session ends and say its length right.

    Returns where it starts (None without the header), for storage to check again under its lock.
    """
    header = request.headers.get("Content-Range")
    if header is None:
        return None
    match = CONTENT_RANGE_RE.match(header.strip())
    if match is None:
        raise range_invalid(name, upload_id, size, f"Content-Range {header!r} is not <start>-<end>")
    start, end = int(match.group(1)), int(match.group(2))
    if start != size:
        raise range_invalid(name, upload_id, size,
                            f"chunk starts at byte {start}, but the upload holds {size} bytes")
    if end < start or (request.content_length is not None and request.content_length != end - start + 1):
        raise range_invalid(name, upload_id, size,
                            f"Content-Range {header!r} does not match Content-Length {request.content_length}")
    return start


def _append_chunk(services: Any, name: str, upload: dict[str, Any]) -> int:
    """Append this request's body to the session, in order; the session's new size."""
    expected_start = _check_content_range(name, upload["_id"], content.upload_size(services, upload))
    try:
        return content.append_upload(services, upload, request.stream, expected_start=expected_start,
                                     length=request.content_length)
    except RangeInvalid as exc:  # another request of the session got in between: say where it ends now
        raise range_invalid(name, upload["_id"], content.upload_size(services, upload), exc.message) from None


def _session(services: Any, name: str, upload_id: str) -> dict[str, Any]:
    """The session ``upload_id`` if the caller opened it in repository ``name``."""
    return content.get_upload(services, name, upload_id, current_caller().login)


def _mountable_size(services: Any, name: str, digest: str, source_name: str | None) -> int | None:
    """The size of ``digest`` if the caller may mount it into ``name``, else None.

    With ``from`` the blob must be in that repository; without it (OCI 1.1) any
    repository the caller may pull from will do, so a push of an image the
    registry already holds elsewhere sends no layer again.
    """
    holders: list[str] = []
    if source_name and oci.NAME_RE.match(source_name):
        holders.append(source_name)
    target = find_repository_by_name(services.db, name)
    if target is not None:
        holders.append(name)
    for holder_name in holders:
        holder = find_repository_by_name(services.db, holder_name)
        size = content.blob_size(services, holder["_id"] if holder else None, digest)
        if size is not None and may(services, current_caller(), PULL, holder_name):
            return size
    if source_name is None:
        for holder in content.repositories_holding_blob(services.db, digest):
            if may(services, current_caller(), PULL, holder["name"]):
                return content.blob_size(services, holder["_id"], digest)
    return None


@blueprint.post("/<path:name>/blobs/uploads/")
@auth_required(PUSH, repository="name")
def start_upload(name: str) -> Response:
    """Open a session (202), take a whole blob at once (``?digest=``, 201) or mount one (``?mount=&from=``)."""
    services = current_services()
    digest = request.args.get("digest")
    if digest is not None:
        oci.validate_digest(digest)
        content.put_blob(services, name, digest, request.stream, request.content_length)
        return blob_created(name, digest)
    mount_digest = request.args.get("mount")
    if mount_digest and oci.is_digest(mount_digest):
        size = _mountable_size(services, name, mount_digest, request.args.get("from"))
        if size is not None:
            target = find_repository_by_name(services.db, name) or content.ensure_repository(services.db, name)
            content.add_blob(services, target, mount_digest, size)
            return blob_created(name, mount_digest)
    # No mount possible: fall back to an ordinary upload session, as the protocol says.
    repo = find_repository_by_name(services.db, name)
    upload_id = content.start_upload(services, name, repo["_id"] if repo else None, current_caller().login)
    return upload_response(name, upload_id, 0)


@blueprint.get("/<path:name>/blobs/uploads/<upload_id>")
@auth_required(PUSH, repository="name")
def upload_status(name: str, upload_id: str) -> Response:
    services = current_services()
    upload = _session(services, name, upload_id)
    return upload_response(name, upload_id, content.upload_size(services, upload), status=204)


@blueprint.patch("/<path:name>/blobs/uploads/<upload_id>")
@auth_required(PUSH, repository="name")
def upload_chunk(name: str, upload_id: str) -> Response:
    services = current_services()
    size = _append_chunk(services, name, _session(services, name, upload_id))
    return upload_response(name, upload_id, size)


@blueprint.put("/<path:name>/blobs/uploads/<upload_id>")
@auth_required(PUSH, repository="name")
def finish_upload(name: str, upload_id: str) -> Response:
    """Take the last chunk if any, verify the digest of the whole blob, and keep it (201)."""
    services = current_services()
    upload = _session(services, name, upload_id)
    digest = request.args.get("digest")
    if not digest:
        raise DigestInvalid("the digest query parameter is required to finish an upload")
    oci.validate_digest(digest)
    if _has_body():
        _append_chunk(services, name, upload)
    content.finish_upload(services, upload, digest)
    return blob_created(name, digest)


@blueprint.delete("/<path:name>/blobs/uploads/<upload_id>")
@auth_required(PUSH, repository="name")
def cancel_upload(name: str, upload_id: str) -> Response:
    services = current_services()
    content.cancel_upload(services, _session(services, name, upload_id))
    return empty(204, {})
