"""``GET /ca.crt`` on Crane: the CA certificate of the ``ca_certificate`` setting, without a token."""
from __future__ import annotations

from flask import Blueprint, Response

from pulp_registry.ca_certificate import CA_PATH, ca_certificate_response
from pulp_registry.registry_errors import NameUnknown

from crane.views.base import crane_state

blueprint = Blueprint("ca", __name__)


# Public on purpose: clients need the CA before they can trust the server.
@blueprint.route(CA_PATH, methods=["GET", "HEAD"])
def ca_certificate() -> Response:
    response = ca_certificate_response(crane_state().settings.ca_certificate)
    if response is None:  # 404 in the JSON form of Crane's other unknown paths
        raise NameUnknown("no CA certificate is configured (setting ca_certificate)")
    return response
