"""``GET``/``HEAD /v2/<name>/blobs/<digest>``: a blob, only through a repository that holds it.

HEAD is answered from memory. GET hands the file to the WSGI server's
``wsgi.file_wrapper`` (gunicorn's sendfile path, with a small kernel queue:
see ``crane.send_buffer``; werkzeug handles ``Range``),
or to a front web server (``X-Accel-Redirect``/``X-Sendfile``), or redirects
to a content URL, as ``blob_serving`` says. With ``blob_storage: s3`` configs
and layers are in the bucket (``crane.s3_blobs``: a pre-signed redirect or a
stream), while a manifest asked for as a blob is still served from the tree.
"""
from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.utils import send_file

from pulp_registry import oci
from pulp_registry.registry_errors import BlobUnknown, RangeNotSatisfiable

from crane.published import PublishedRepository
from crane.send_buffer import limit_unsent
from crane.views.access import may_pull, pull_access
from crane.views.base import crane_state, external_url

blueprint = Blueprint("blobs", __name__)

OCTET_STREAM = "application/octet-stream"
MAX_AGE = 31536000


def blob_headers(digest: str, protected: bool) -> dict[str, str]:
    return {
        "Docker-Content-Digest": digest,
        "ETag": f'"{digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": f"{'private' if protected else 'public'}, max-age={MAX_AGE}, immutable",
    }


@blueprint.route("/v2/<repo_name:name>/blobs/<reference:digest>", methods=["GET", "HEAD"])
@pull_access
def get_blob(repository: PublishedRepository, digest: str) -> Response:
    oci.validate_digest(digest)
    size = repository.holds_blob(digest)
    if size is None:
        raise BlobUnknown(f"blob {digest} not found in {repository.name}", detail={"digest": digest})
    headers = blob_headers(digest, not may_pull(repository))   # "public" only if anyone may pull it
    if request.method == "HEAD":
        response = Response(status=200, headers=headers, content_type=OCTET_STREAM)
        response.headers["Content-Length"] = str(size)
        return response
    state = crane_state()
    mode = state.settings.blob_serving
    if state.settings.blob_storage == "s3" and repository.manifests.get(digest) is None:
        from crane.s3_blobs import s3_blobs

        blobs = s3_blobs(state.settings)
        if mode == "redirect":
            return blobs.redirect(digest, headers)
        return blobs.stream(digest, size, headers, request.environ.get("HTTP_RANGE"))
    if mode == "stream" or state.settings.blob_storage == "s3":
        limit_unsent(request.environ, state.settings.send_lowat)
        return _stream(state.tree.blob_file(digest), size, headers)
    algorithm, hexdigest = digest.split(":", 1)
    if mode == "redirect":
        # A path prefix is made absolute with the (trusted-proxy forwarded) scheme and host.
        location = external_url(f"{state.settings.blob_url_prefix.rstrip('/')}/{algorithm}/{hexdigest}")
        return Response(status=307, headers={**headers, "Location": location})
    response = Response(status=200, headers=headers, content_type=OCTET_STREAM)
    if mode == "x-accel-redirect":
        response.headers["X-Accel-Redirect"] = f"{state.settings.blob_url_prefix.rstrip('/')}/{algorithm}/{hexdigest}"
    else:
        response.headers["X-Sendfile"] = str(state.tree.blob_file(digest).resolve())
    return response


def _stream(path, size: int, headers: dict[str, str]) -> Response:
    range_header = request.environ.get("HTTP_RANGE")
    if range_header is not None:
        oci.byte_range(range_header, size)   # 416 for one malformed range (werkzeug would send it all)
    try:
        response = send_file(path, request.environ, mimetype=OCTET_STREAM, conditional=True,
                             etag=headers["Docker-Content-Digest"], max_age=MAX_AGE, use_x_sendfile=False)
    except RequestedRangeNotSatisfiable:
        raise RangeNotSatisfiable(f"requested range is outside the blob's {size} bytes",
                                  headers={"Content-Range": f"bytes */{size}"}) from None
    except OSError:
        raise BlobUnknown(f"blob {headers['Docker-Content-Digest']} is not available") from None
    for name, value in headers.items():
        response.headers[name] = value
    return response
