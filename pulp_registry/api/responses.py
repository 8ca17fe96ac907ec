"""Shared request and response shapes of the REST API: JSON bodies, call reports for spawned tasks."""
from __future__ import annotations

from typing import Any, Iterable

from flask import jsonify, request
from werkzeug.wrappers import Response

from pulp_registry.api.errors import InvalidBody
from pulp_registry.tasks import task_json


def json_body(allowed: Iterable[str], required: Iterable[str] = ()) -> dict[str, Any]:
    """The request's JSON object; unknown or missing fields are a 400 that names the field."""
    body = request.get_json(force=True, silent=True)
    if body is None and request.get_data():
        raise InvalidBody("the request body is not valid JSON", field="body")
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidBody("the request body must be a JSON object", field="body")
    allowed = set(allowed)
    for field in body:
        if field not in allowed:
            raise InvalidBody(f"unknown field {field!r}; allowed: {', '.join(sorted(allowed))}", field=field)
    for field in required:
        if field not in body:
            raise InvalidBody(f"missing required field {field!r}", field=field)
    return body


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def empty_response(status: int = 204) -> Response:
    return Response(b"", status=status)


def call_report(tasks: Iterable[dict[str, Any]], result: Any = None) -> Response:
    """Pulp 2's answer to long work: ``202`` with the spawned tasks' hrefs."""
    spawned = [{"_href": task_json(task)["_href"], "task_id": task["_id"]} for task in tasks]
    body = {"result": result, "error": None, "spawned_tasks": spawned}
    headers = {"Location": spawned[0]["_href"]} if len(spawned) == 1 else {}
    return json_response(body, 202, headers)
