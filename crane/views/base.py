"""``/`` (load balancer health), ``/v2/`` (API version check) and what no other route matched.

Also the helpers every view uses: ``crane_state()`` and the response helpers.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app

from pulp_registry import oci
from pulp_registry.registry_errors import NameUnknown

from crane.config import CraneSettings
from crane.published import PublishedTree

blueprint = Blueprint("base", __name__)


@dataclass(frozen=True)
class CraneState:
    """What a Crane app serves from; built once by ``create_app``."""

    settings: CraneSettings
    tree: PublishedTree


def crane_state() -> CraneState:
    return current_app.extensions["crane"]


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(doc), status=status, headers=headers, mimetype="application/json")


@blueprint.route("/", methods=["GET", "HEAD"])
def health() -> Response:
    return Response("ok\n", mimetype="text/plain")


@blueprint.route("/v2/", methods=["GET", "HEAD"])
def api_version() -> Response:
    return json_response({})


@blueprint.route("/v2/<path:rest>", methods=["GET", "HEAD"])
def not_routed(rest: str) -> Response:
    """Say precisely what is wrong with a path no route took (an invalid name or digest, usually)."""
    for marker, check in (("/blobs/", oci.validate_digest), ("/manifests/", oci.validate_reference)):
        name, found, reference = rest.partition(marker)
        if found:
            oci.validate_name(name)
            check(reference)
    raise NameUnknown(f"no such endpoint: /v2/{rest}")
