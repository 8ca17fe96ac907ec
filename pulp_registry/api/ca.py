"""``GET /ca.crt`` on the admin side: the CA certificate, without login, whenever one is configured."""
from __future__ import annotations

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry.api.errors import NotFound
from pulp_registry.ca_certificate import CA_PATH, admin_ca_certificate, ca_certificate_response
from pulp_registry.services import current_services

blueprint = Blueprint("ca", __name__)


# Public on purpose: clients need the CA before they can trust the server to send it credentials.
@blueprint.route(CA_PATH, methods=["GET", "HEAD"])
def ca_certificate() -> Response:
    settings = current_services().settings
    response = ca_certificate_response(admin_ca_certificate(settings.ca_certificate, settings.data_dir))
    if response is None:
        raise NotFound("no CA certificate is configured (setting ca_certificate, or pulp-registry certs init)")
    return response
