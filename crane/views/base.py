"""``/`` (load balancer health), ``/v2/`` (API version check) and what no other route matched.

Also the helpers every view uses: ``crane_state()`` and the response helpers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, request

from pulp_registry import oci
from pulp_registry.registry_errors import NameUnknown

from crane.config import CraneSettings
from crane.published import PublishedTree

if TYPE_CHECKING:   # PyJWT and cryptography are imported only where tokens are configured (start-up time)
    from pulp_registry.registry_tokens import TokenVerifier

blueprint = Blueprint("base", __name__)


@dataclass(frozen=True)
class CraneState:
    """What a Crane app serves from; built once by ``create_app``."""

    settings: CraneSettings
    tree: PublishedTree
    #: Built from ``settings.token_public_key`` when not given; None: no token is accepted.
    verifier: TokenVerifier | None = None

    def __post_init__(self) -> None:
        if self.verifier is None and self.settings.token_public_key:
            from crane.tokens import verifier_for

            object.__setattr__(self, "verifier", verifier_for(self.settings))


def crane_state() -> CraneState:
    return current_app.extensions["crane"]


def external_url(url: str) -> str:
    """``url`` as a client outside reaches it: a path gets the request's scheme and host.

    With ``trusted_proxies`` set, ``create_app`` wraps the app in werkzeug's
    ProxyFix, so the scheme and host here are the ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` of the trusted proxies; without it, forwarded headers
    are ignored. An absolute URL is left as configured.
    """
    if url.startswith("/") and not url.startswith("//"):
        return request.host_url.rstrip("/") + url
    return url


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc), status=status, headers=headers, mimetype="application/json")


@blueprint.route("/", methods=["GET", "HEAD"])
def health() -> Response:
    return Response("ok\n", mimetype="text/plain")


@blueprint.route("/v2/", methods=["GET", "HEAD"])
def api_version() -> Response:
    """200 without token auth; with it, 401 with a challenge unless the token is valid (see access.py)."""
    from crane.views.access import require_registry_access   # access imports this module

    require_registry_access()
    return json_response({})


@blueprint.route("/v2/<path:rest>", methods=["GET", "HEAD"])
def not_routed(rest: str) -> Response:
    """Say precisely what is wrong with a path no route took (an invalid name or digest, usually)."""
    for marker, check in (("/blobs/", oci.validate_digest), ("/manifests/", oci.require_manifest_name),
                          ("/referrers/", oci.validate_digest)):
        name, found, reference = rest.partition(marker)
        if found:
            oci.validate_name(name)
            check(reference)
    raise NameUnknown(f"no such endpoint: /v2/{rest}")

