"""``GET``/``HEAD /v2/<name>/referrers/<digest>`` on the admin side, answered like Crane's (OCI 1.1).

An OCI image index of the descriptors of the repository's manifests whose
``subject`` is ``<digest>`` (``content.list_referrers``), straight from the
database: what was just pushed is listed before it is published.
``?artifactType=`` keeps one type and says so in ``OCI-Filters-Applied``; a
subject nothing refers to answers an empty index (in a repository not pushed
to yet too, as the conformance suite asks of a new namespace), a malformed
digest 400.
"""
from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import content, oci
from pulp_registry.access import PULL, auth_required
from pulp_registry.registry.responses import json_response
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.services import current_services

blueprint = Blueprint("registry_referrers", __name__)

FILTERS_APPLIED = "OCI-Filters-Applied"


@blueprint.route("/<path:name>/referrers/<digest>", methods=["GET", "HEAD"])
@auth_required(PULL, repository="name")
def list_referrers(name: str, digest: str) -> Response:
    services = current_services()
    oci.validate_digest(digest)
    repo = find_repository_by_name(services.db, name)  # none yet: nothing refers to anything in it
    artifact_type = request.args.get("artifactType") or None
    manifests = content.list_referrers(services.db, repo["_id"] if repo else None, digest, artifact_type)
    headers = {"Cache-Control": "no-cache"}
    if artifact_type:
        headers[FILTERS_APPLIED] = "artifactType"
    response = json_response({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": manifests},
                             headers=headers)
    response.headers["Content-Type"] = oci.OCI_INDEX
    return response
