"""The admin side's Flask app factory: the REST API under /pulp/api/v2/ and push under /v2/."""
from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from pulp_registry.api.errors import ApiError, api_error_response
from pulp_registry.registry_errors import (API_VERSION, API_VERSION_HEADER, NameUnknown, RegistryError,
                                          Unsupported, error_response)
from pulp_registry.services import Services

REGISTRY_PREFIX = "/v2"


def create_app(services: Services) -> Flask:
    app = Flask("pulp_registry")
    app.extensions["registry_services"] = services
    app.config["MAX_CONTENT_LENGTH"] = None
    app.url_map.strict_slashes = False

    from pulp_registry.api import repositories, status, tasks
    from pulp_registry.registry import blobs, manifests, uploads, base

    for module in (repositories, tasks, status):
        app.register_blueprint(module.blueprint, url_prefix="/pulp/api/v2")
    for module in (base, uploads, blobs, manifests):
        app.register_blueprint(module.blueprint, url_prefix=REGISTRY_PREFIX)

    app.register_error_handler(ApiError, api_error_response)
    app.register_error_handler(RegistryError, error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.after_request(_protocol_headers)
    return app


def get_services() -> Services:
    return current_app.extensions["registry_services"]


def _is_registry_request() -> bool:
    return request.path == REGISTRY_PREFIX or request.path.startswith(REGISTRY_PREFIX + "/")


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


def _protocol_headers(response: Response) -> Response:
    if _is_registry_request():
        response.headers[API_VERSION_HEADER] = API_VERSION
    return response
