"""One record per HTTP request (the request log) and the request metrics, as WSGI middleware.

``RequestObserver`` wraps an app (admin API or Crane): it gives the request an
id (a trusted ``X-Request-ID`` from a proxy, else a new one; echoed back as
``X-Request-ID``), times it until its response headers are ready, then counts
it in ``HttpMetrics`` and/or logs one INFO record on ``pulp_registry.requests``
or ``crane.requests``: message ``GET /v2/x/manifests/1 200`` and the fields
request_id, method, route, path, status, bytes, duration_ms, user, client.
The route is the matched Flask rule (``note_flask_request`` puts it in the
WSGI environ; Crane's fast path puts its fixed templates there), so no label
holds a raw path. The path is logged without its query string, and no header
is ever logged. Pure (Flask and werkzeug aside), so Crane uses it too.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any, Callable, Iterable

from pulp_registry.metrics import HttpMetrics

ROUTE_KEY = "pulp_registry.route"
USER_KEY = "pulp_registry.user"
REQUEST_ID_KEY = "pulp_registry.request_id"
REQUEST_ID_HEADER = "X-Request-ID"
#: What a proxy's request id may look like (nginx ``$request_id`` is 32 hex digits); anything else is replaced.
TRUSTED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def client_address(environ: dict[str, Any], trusted_proxies: int) -> str | None:
    """The client as the ``trusted_proxies``-th proxy from us saw it (``X-Forwarded-For``), else the peer."""
    original = environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR") or environ.get("REMOTE_ADDR")
    if trusted_proxies:
        forwarded = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= trusted_proxies:
            return forwarded[-trusted_proxies]
    return original


def request_id(environ: dict[str, Any], trusted_proxies: int) -> str:
    """The proxy's ``X-Request-ID`` when a trusted proxy is in front and it looks like one; else a new id."""
    if trusted_proxies:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        if TRUSTED_REQUEST_ID.match(given):
            return given
    return uuid.uuid4().hex


def note_flask_request(_exc: BaseException | None = None) -> None:
    """Flask ``teardown_request`` hook: the matched rule and the caller's login, for ``RequestObserver``."""
    from flask import g, request

    environ = request.environ
    rule = request.url_rule
    environ[ROUTE_KEY] = rule.rule if rule is not None else None
    caller = g.get("caller")
    environ[USER_KEY] = getattr(caller, "login", None)


class RequestObserver:
    """WSGI middleware: request id, then metrics (``http``) and/or one log record (``logger``) per request."""

    def __init__(self, app: WSGIApp, *, http: HttpMetrics | None = None, logger: logging.Logger | None = None,
                 trusted_proxies: int = 0, request_ids: bool = True,
                 served: Callable[[str | None, str, int], None] | None = None) -> None:
        self.app = app
        self.http = http
        self.logger = logger
        self.trusted_proxies = trusted_proxies
        self.request_ids = request_ids
        self.served = served

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = environ.get(REQUEST_ID_KEY)
        if rid is None and self.request_ids:
            rid = environ[REQUEST_ID_KEY] = request_id(environ, self.trusted_proxies)
        client = client_address(environ, self.trusted_proxies) if self.logger is not None else None
        seen: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if rid is not None and self.request_ids:
                headers = [*headers, (REQUEST_ID_HEADER, rid)]   # a copy: callers may reuse their list
            seen[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        try:
            body = self.app(environ, capture)
        except BaseException:
            self._record(environ, "500 INTERNAL SERVER ERROR", [], None, started, client, rid)
            raise
        status, headers = seen if seen else ("500 INTERNAL SERVER ERROR", [])
        self._record(environ, status, headers, body, started, client, rid)
        return body

    def _record(self, environ: dict[str, Any], status_line: str, headers: list[tuple[str, str]], body: Any,
                started: float, client: str | None, rid: str | None) -> None:
        seconds = time.perf_counter() - started
        method = environ.get("REQUEST_METHOD", "")
        status = int(status_line.split(" ", 1)[0])
        body_bytes = 0 if method == "HEAD" else _body_bytes(headers, body)
        route = environ.get(ROUTE_KEY)
        try:
            if self.http is not None:
                self.http.observe(route, method, status, seconds, body_bytes)
            if self.served is not None:
                self.served(route, method, status)
        except Exception:  # noqa: BLE001 - metrics must never fail a request
            logging.getLogger(__name__).warning("could not count a request", exc_info=True)
        if self.logger is not None:
            path = environ.get("PATH_INFO", "")
            self.logger.info("%s %s %s", method, path, status, extra={"fields": {
                "request_id": rid, "method": method, "route": route, "path": path, "status": status,
                "bytes": body_bytes, "duration_ms": round(seconds * 1000, 3),
                "user": environ.get(USER_KEY), "client": client}})


def _body_bytes(headers: list[tuple[str, str]], body: Any) -> int:
    for name, value in headers:
        if name.lower() == "content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    if isinstance(body, list):
        return sum(len(chunk) for chunk in body)
    return 0
