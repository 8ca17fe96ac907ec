"""``create_app(settings)``: Crane, the read-only pull side of the registry protocol, as a Flask app.

Crane reads the published tree and nothing else: no database, no broker, no
write path. Protocol-wide behaviour lives here in one place: write methods are
refused with ``405 UNSUPPORTED``, every response carries
``Docker-Distribution-API-Version``, every error is the registry's JSON form,
and the throttled check for new publishes runs before each request.
"""
from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.proxy_fix import ProxyFix

from pulp_registry.registry_errors import (API_VERSION, API_VERSION_HEADER, NameUnknown, RegistryError,
                                           Unsupported, error_response)

from crane.config import CraneSettings
from pulp_registry.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, METRICS_PATH, exposition
from pulp_registry.request_log import RequestObserver, note_flask_request

from crane.fastpath import FastPath
from crane.metrics import FAST_KINDS, CraneMetrics
from crane.published import PublishedTree
from crane.views import base, blobs, catalog, manifests, referrers, tags
from crane.views import ca
from crane.views import health
from crane.views.base import CraneState
from crane.views.routing import CONVERTERS

log = logging.getLogger("crane")

READ_METHODS = frozenset(("GET", "HEAD"))
FAST_ROUTES = tuple(route for _, route, _ in FAST_KINDS)


def create_app(settings: CraneSettings, tree: PublishedTree | None = None, fast_path: bool = True) -> Flask:
    """Build a Crane app serving ``settings.data_dir``.

    ``fast_path`` puts ``crane.fastpath.FastPath`` in front (plain manifest GET/HEAD
    and blob HEAD answered from memory); off, Flask answers everything (tests compare both).

    Raises ``crane.published.PublishedFormatError`` if the tree is in a format
    this Crane cannot read, so start-up stops with that message.
    """
    app = Flask("crane", static_folder=None)
    app.url_map.converters.update(CONVERTERS)
    app.url_map.strict_slashes = False
    if tree is None:
        tree = PublishedTree(settings.data_dir, settings.poll_interval, settings.manifest_cache_size,
                             settings.repository_cache_mib)
    app.extensions["crane"] = CraneState(settings, tree)
    for module in (base, catalog, manifests, blobs, tags, referrers):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(ca.blueprint)
    app.register_blueprint(health.blueprint)

    @app.before_request
    def refuse_writes_and_refresh() -> None:
        if request.method not in READ_METHODS:
            raise Unsupported(f"{request.method} is not supported: this registry is read-only "
                              "(push to the admin side)")
        tree.refresh_if_due()

    @app.after_request
    def api_version_header(response: Response) -> Response:
        response.headers[API_VERSION_HEADER] = API_VERSION
        return response

    app.register_error_handler(RegistryError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    crane_metrics, request_log = _observe(app, settings, tree)
    if settings.trusted_proxies:
        count = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)  # type: ignore[method-assign]
    if fast_path:
        # Outermost: its answers hold no URLs, so they need no ProxyFix; all else goes on to Flask.
        app.wsgi_app = FastPath(app.wsgi_app, settings, tree, crane_metrics,  # type: ignore[method-assign]
                                FAST_ROUTES if request_log else None)
    if request_log:
        # Outermost: one line per request, whichever path answers it.
        observer = RequestObserver(app.wsgi_app, logger=logging.getLogger("crane.requests"),
                                   trusted_proxies=settings.trusted_proxies)
        app.wsgi_app = observer  # type: ignore[method-assign]
    return app


def _observe(app: Flask, settings: CraneSettings, tree: PublishedTree) -> tuple[CraneMetrics | None, bool]:
    """``/metrics`` and the Flask path's request metrics when ``metrics`` is on; whether to log requests."""
    app.teardown_request(note_flask_request)
    if settings.access_log:
        logging.getLogger("crane.requests").setLevel(logging.INFO)   # asked for: shown whatever log_level says
    crane_metrics = CraneMetrics(tree) if settings.metrics else None
    if crane_metrics is not None:
        def metrics_view() -> Response:
            crane_metrics.flush()   # this worker's fast-path counts, before they are read
            return Response(exposition([crane_metrics]), headers={"Content-Type": METRICS_CONTENT_TYPE})

        app.add_url_rule(METRICS_PATH, "metrics", metrics_view, methods=["GET"])
        app.wsgi_app = RequestObserver(app.wsgi_app, http=crane_metrics.http,  # type: ignore[method-assign]
                                       served=crane_metrics.served, request_ids=False)
    return crane_metrics, settings.log_format == "json" or settings.access_log


def _http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors (no route, wrong method) in the registry's JSON form."""
    if isinstance(exc, MethodNotAllowed):
        return error_response(Unsupported(f"{request.method} is not supported on {request.path}"))
    if exc.code == 404:
        return error_response(NameUnknown(f"no such endpoint: {request.path}"))
    error = RegistryError(exc.description)
    error.status = exc.code or 500
    return error_response(error)


def _unexpected_error(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return error_response(RegistryError("internal error"))
