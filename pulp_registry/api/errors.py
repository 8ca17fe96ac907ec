"""Admin API errors: JSON with a message (and the field at fault, for a bad body)."""
from __future__ import annotations

from typing import Any

from flask import jsonify
from werkzeug.wrappers import Response


class ApiError(Exception):
    """An error the admin API answers with ``{"error": ..., "message": ..., "field": ...}``."""

    status = 400
    error = "bad_request"

    def __init__(self, message: str, field: str | None = None, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message, "http_status": self.status}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidBody(ApiError):
    status, error = 400, "invalid"


class NotAuthenticated(ApiError):
    status, error = 401, "unauthorized"


class Forbidden(ApiError):
    status, error = 403, "forbidden"


class NotFound(ApiError):
    status, error = 404, "not_found"


class Conflict(ApiError):
    status, error = 409, "conflict"


class TooManyRequests(ApiError):
    status, error = 429, "too_many_requests"


class Unavailable(ApiError):
    status, error = 503, "unavailable"


def api_error_response(error: ApiError) -> Response:
    response = jsonify(error.to_json())
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response
