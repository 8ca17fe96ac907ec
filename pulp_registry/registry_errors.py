"""Registry protocol errors: one class per code, each knowing its status and JSON form.

Both the admin side's push endpoints and Crane raise these; ``error_response``
turns one into the spec's ``{"errors": [...]}`` body. Pure: werkzeug only.
"""
from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"


class RegistryError(Exception):
    code = "UNKNOWN"
    status = 500
    default_message = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.message)

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}


class BlobUnknown(RegistryError):
    code, status, default_message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload ends."""
    status, default_message = 416, "requested range not satisfiable"


class BlobUploadUnknown(RegistryError):
    code, status, default_message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, default_message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status, default_message = "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a blob unknown to the repository"


class ManifestInvalid(RegistryError):
    code, status, default_message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    status, default_message = 413, "manifest too large"


class ManifestUnknown(RegistryError):
    code, status, default_message = "MANIFEST_UNKNOWN", 404, "manifest unknown"


class NameInvalid(RegistryError):
    code, status, default_message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, default_message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, default_message = "SIZE_INVALID", 400, "provided length did not match content length"


class BlobTooLarge(SizeInvalid):
    """A blob over ``max_blob_size`` (413: the body is refused, as for a manifest too large)."""
    status, default_message = 413, "blob too large"


class TagInvalid(RegistryError):
    code, status, default_message = "TAG_INVALID", 400, "manifest tag did not match URI"


class Unauthorized(RegistryError):
    code, status, default_message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, default_message = "DENIED", 403, "requested access to the resource is denied"


class QuotaExceeded(Denied):
    """A push that would take content storage over ``storage_quota`` (413: the body is refused)."""
    status, default_message = 413, "storage quota exceeded"


class Unsupported(RegistryError):
    code, status, default_message = "UNSUPPORTED", 405, "the operation is unsupported"


class TooManyRequests(RegistryError):
    code, status, default_message = "TOOMANYREQUESTS", 429, "too many requests"


class Unavailable(RegistryError):
    """A service the registry needs (the LDAP directory) does not answer."""
    code, status, default_message = "UNAVAILABLE", 503, "service unavailable"


class StorageFull(Unavailable):
    """The content storage's disk (or its quota on it) is full: 507 Insufficient Storage.

    The spec's closed list of codes has none for this; distribution's ``UNAVAILABLE`` is the
    nearest, and the message says plainly what happened.
    """
    status, default_message = 507, "storage is full"


# The token server's errors (distribution's contrib/token-server codes), answered by ``GET``/``POST /token``.

class BadTokenOption(RegistryError):
    code, status, default_message = "BAD_TOKEN_OPTION", 400, "bad token option"


class MissingRequiredField(RegistryError):
    code, status, default_message = "MISSING_REQUIRED_FIELD", 400, "missing required field"


class UnsupportedValue(RegistryError):
    code, status, default_message = "UNSUPPORTED_VALUE", 400, "unsupported value"


class PaginationNumberInvalid(RegistryError):
    """``n`` of a tags list or catalog request that is not a non-negative integer (distribution's code)."""
    code, status, default_message = "PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested"


class RangeNotSatisfiable(RegistryError):
    """A blob GET whose ``Range`` lies outside the blob (distribution's RANGE_INVALID, 416)."""
    code, status, default_message = "RANGE_INVALID", 416, "requested range not satisfiable"


def error_response(error: RegistryError) -> Response:
    """The JSON error response for ``error``, with the protocol version header."""
    response = Response(json.dumps(error.to_json()), status=error.status, mimetype="application/json")
    response.headers[API_VERSION_HEADER] = API_VERSION
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
