"""``GET``/``HEAD /v2/<name>/referrers/<digest>`` (OCI distribution spec 1.1): what refers to a manifest.

Answers an OCI image index whose ``manifests`` are the descriptors of every
manifest in the repository whose ``subject`` is ``<digest>`` (signatures,
SBOMs and other artifacts pushed by cosign, notation, oras). The descriptors
were built once when the repository's version was loaded
(``crane.published.referrer_of``), so a request only picks and joins them.
``?artifactType=<type>`` keeps those of that type and the response then says
``OCI-Filters-Applied: artifactType``. A subject nothing refers to (or that is
not in the repository at all) answers 200 with an empty list, as the spec
requires; a malformed digest answers ``400 DIGEST_INVALID``.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from pulp_registry import oci

from crane.published import PublishedRepository
from crane.views.access import may_pull, pull_access

blueprint = Blueprint("referrers", __name__)

FILTERS_APPLIED = "OCI-Filters-Applied"


def referrers_index(repository: PublishedRepository, subject: str, artifact_type: str | None = None) -> bytes:
    """The referrers index of ``subject`` in ``repository``, keeping only ``artifact_type`` if given."""
    found = repository.referrers.get(subject, ())
    if artifact_type:
        found = tuple(referrer for referrer in found if referrer.artifact_type == artifact_type)
    manifests = ",".join(referrer.descriptor_json for referrer in found)
    return (f'{{"schemaVersion":2,"mediaType":"{oci.OCI_INDEX}","manifests":[{manifests}]}}').encode()


@blueprint.route("/v2/<repo_name:name>/referrers/<reference:digest>", methods=["GET", "HEAD"])
@pull_access
def list_referrers(repository: PublishedRepository, digest: str) -> Response:
    oci.validate_digest(digest)
    artifact_type = request.args.get("artifactType") or None
    body = referrers_index(repository, digest, artifact_type)
    headers = {"Cache-Control": ("public" if may_pull(repository) else "private") + ", no-cache"}
    if artifact_type:
        headers[FILTERS_APPLIED] = "artifactType"
    return Response(body, status=200, headers=headers, content_type=oci.OCI_INDEX)
