"""The admin side's Flask app factory: the REST API under /pulp/api/v2/, push under /v2/, tokens at /token."""
from __future__ import annotations

import logging

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from pulp_registry import registry_errors
from pulp_registry.access import AccessDenied, AuthenticationFailed
from pulp_registry.api import errors as api_errors
from pulp_registry.api.errors import ApiError, api_error_response
from pulp_registry.login_limits import TooManyFailures
from pulp_registry.public_urls import admin_url
from pulp_registry.maintenance import ReadOnlyMode
from pulp_registry.registry_errors import (API_VERSION, API_VERSION_HEADER, NameUnknown, RegistryError,
                                          Unsupported, error_response)
from pulp_registry.services import Services, current_services

log = logging.getLogger(__name__)

REGISTRY_PREFIX = "/v2"
REST_PREFIX = "/pulp/api/v2"
TOKEN_PATH = "/token"
BASIC_CHALLENGE = 'Basic realm="pulp-registry"'


def create_app(services: Services) -> Flask:
    app = Flask("pulp_registry")
    app.extensions["registry_services"] = services
    app.config["MAX_CONTENT_LENGTH"] = None
    app.url_map.strict_slashes = False

    from pulp_registry.api import login, permissions, repositories, roles, status, tasks, users
    from pulp_registry.api import promotion
    from pulp_registry.api import orphans
    from pulp_registry.api import ca
    from pulp_registry.api import health
    from pulp_registry.api import maintenance as maintenance_api
    from pulp_registry.registry import base, blobs, manifests, referrers, token, uploads

    for module in (repositories, promotion, orphans, tasks, status, users, roles, permissions, login):
        app.register_blueprint(module.blueprint, url_prefix=REST_PREFIX)
    app.register_blueprint(maintenance_api.blueprint, url_prefix=REST_PREFIX)
    for module in (base, uploads, blobs, manifests, referrers):
        app.register_blueprint(module.blueprint, url_prefix=REGISTRY_PREFIX)
    app.register_blueprint(token.blueprint)
    app.register_blueprint(ca.blueprint)  # /ca.crt, without login
    app.register_blueprint(health.blueprint)  # /livez, /readyz, without login
    from pulp_registry.console import register_console

    register_console(app)  # /console/, the web console

    app.register_error_handler(ApiError, api_error_response)
    app.register_error_handler(RegistryError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(AuthenticationFailed, _authentication_failed)
    app.register_error_handler(AccessDenied, _access_denied)
    app.register_error_handler(TooManyFailures, _too_many_failures)
    app.register_error_handler(ReadOnlyMode, _read_only)
    _register_directory_errors(app)
    app.before_request(_limit_rest_body)
    app.after_request(_protocol_headers)
    _trust_proxies(app, services.settings.trusted_proxies)
    _observe(app, services)
    return app


def _observe(app: Flask, services: Services) -> None:
    """``/metrics`` (no login: keep it internal), request metrics, the request log (``log_format: json``)
    and an ``X-Request-ID`` on every response; outermost, so it sees every request."""
    from pulp_registry.metrics import CONTENT_TYPE, METRICS_PATH, HttpMetrics, exposition
    from pulp_registry.request_log import RequestObserver, note_flask_request
    from pulp_registry.task_metrics import TaskCollector

    settings = services.settings
    app.teardown_request(note_flask_request)
    if settings.metrics:
        collector = TaskCollector(services.db)
        app.add_url_rule(METRICS_PATH, "metrics", lambda: Response(
            exposition([collector]), headers={"Content-Type": CONTENT_TYPE}), methods=["GET"])
    app.wsgi_app = RequestObserver(  # type: ignore[method-assign]
        app.wsgi_app, http=HttpMetrics("pulp_registry_http") if settings.metrics else None,
        logger=logging.getLogger("pulp_registry.requests") if settings.log_format == "json" else None,
        trusted_proxies=settings.trusted_proxies)


def _trust_proxies(app: Flask, count: int) -> None:
    """Take scheme, host, port and client address from the ``X-Forwarded-*`` headers of ``count`` proxies.

    Only when configured: otherwise a client could forge them and change the URLs handed out.
    """
    if count > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count,  # type: ignore[method-assign]
                                x_host=count, x_port=count)


def _limit_rest_body() -> None:
    """REST API bodies are small JSON documents: at most ``max_request_body`` bytes (413 otherwise).

    A Content-Length over it is refused before reading; a body without one is cut off when it
    grows past it. Pushes (``/v2/``) have their own limits and are never held to this one.
    """
    if request.path != REST_PREFIX and not request.path.startswith(REST_PREFIX + "/"):
        return
    limit = current_services().settings.max_request_body
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise api_errors.ApiError(f"request body too large: the REST API takes at most {limit} bytes",
                                  status=413)


def _is_registry_request() -> bool:
    return request.path == REGISTRY_PREFIX or request.path.startswith(REGISTRY_PREFIX + "/")


def _is_protocol_request() -> bool:
    """The registry protocol's paths, whose errors take the protocol's JSON form: ``/v2/`` and ``/token``."""
    return _is_registry_request() or request.path == TOKEN_PATH


def _http_error(exc: HTTPException) -> Response:
    """Unrouted paths and methods get the error form of the surface they were aimed at."""
    if _is_registry_request():
        if exc.code == 405:
            return error_response(Unsupported(f"{request.method} is not supported on {request.path}"))
        if exc.code == 404:
            return error_response(NameUnknown(f"no registry endpoint at {request.path}"))
        error = RegistryError(exc.description)
        error.status = exc.code or 500
        return error_response(error)
    return api_error_response(ApiError(exc.description or exc.name, status=exc.code))


def bearer_challenge(scope: str | None = None, error: str | None = None) -> str:
    """Where a registry client gets a token: the admin side's ``/token`` (``token_realm`` when set)."""
    settings = current_services().settings
    realm = settings.token_realm or admin_url(settings, TOKEN_PATH)
    parts = [f'realm="{realm}"', f'service="{settings.token_service}"']
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def _unauthorized(message: str, scope: str | None = None, error: str | None = None) -> Response:
    detail = None
    if scope:  # repository:<name>:<actions>, as distribution details it
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        detail = [{"Type": kind, "Name": name, "Action": action} for action in actions.split(",")]
    challenge = BASIC_CHALLENGE if request.path == TOKEN_PATH else bearer_challenge(scope, error)
    return error_response(registry_errors.Unauthorized(message, detail=detail,
                                                       headers={"WWW-Authenticate": challenge}))


def _authentication_failed(exc: AuthenticationFailed) -> Response:
    if _is_protocol_request():
        return _unauthorized(exc.message, error="invalid_token" if exc.invalid_token else None)
    return api_error_response(api_errors.NotAuthenticated(exc.message, headers={"WWW-Authenticate": BASIC_CHALLENGE}))


def _access_denied(exc: AccessDenied) -> Response:
    if _is_protocol_request():
        # The protocol answers 401 either way: the challenge tells the client which token to fetch.
        return _unauthorized(exc.message, exc.scope, None if exc.caller.anonymous else "insufficient_scope")
    return api_error_response(api_errors.Forbidden(exc.message))


def _too_many_failures(exc: TooManyFailures) -> Response:
    headers = {"Retry-After": str(exc.retry_after)}
    if _is_protocol_request():
        return error_response(registry_errors.TooManyRequests(exc.message, headers=headers))
    return api_error_response(api_errors.TooManyRequests(exc.message, headers=headers))


def _read_only(exc: ReadOnlyMode) -> Response:
    """Read-only maintenance mode: 503 with ``Retry-After`` (``UNAVAILABLE`` on /v2/: it is temporary)."""
    headers = {"Retry-After": str(exc.retry_after)}
    if _is_protocol_request():
        return error_response(registry_errors.Unavailable(exc.message, headers=headers))
    return api_error_response(api_errors.Unavailable(exc.message, headers=headers))


def _register_directory_errors(app: Flask) -> None:
    from pulp_registry.ldap_auth import DirectoryUnavailable

    def directory_unavailable(exc: DirectoryUnavailable) -> Response:
        log.error("login refused: %s", exc)
        message = "the LDAP directory is unavailable; try again later (local users can still log in)"
        if _is_protocol_request():
            return error_response(registry_errors.Unavailable(message))
        return api_error_response(api_errors.Unavailable(message))

    app.register_error_handler(DirectoryUnavailable, directory_unavailable)


def _protocol_headers(response: Response) -> Response:
    if _is_registry_request():
        response.headers[API_VERSION_HEADER] = API_VERSION
    return response
