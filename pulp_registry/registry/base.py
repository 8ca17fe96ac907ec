"""``GET /v2/``: tells clients this is a registry and that their credentials work."""
from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry.access import PULL, auth_required
from pulp_registry.registry.responses import json_response

blueprint = Blueprint("registry_base", __name__)


@blueprint.get("/")
@auth_required(PULL)
def version_check() -> Response:
    return json_response({})
