"""``GET``/``HEAD /v2/<name>/manifests/<reference>``: exact stored bytes, from memory."""
from __future__ import annotations

from flask import Blueprint, Response, request

from pulp_registry import oci
from pulp_registry.registry_errors import ManifestUnknown

from crane.negotiation import find_manifest, negotiate
from crane.published import ContentMissing, ManifestInfo, PublishedRepository
from crane.views.access import may_pull, pull_access
from crane.views.base import crane_state

blueprint = Blueprint("manifests", __name__)

#: Content named by digest never changes; content named by tag must be revalidated.
IMMUTABLE = "max-age=31536000, immutable"
REVALIDATE = "no-cache"


def manifest_headers(manifest: ManifestInfo, by_tag: bool, protected: bool) -> dict[str, str]:
    cache_control = REVALIDATE if by_tag else IMMUTABLE
    return {
        "Content-Type": manifest.media_type,
        "Docker-Content-Digest": manifest.digest,
        "ETag": f'"{manifest.digest}"',
        "Cache-Control": ("private, " if protected else "public, ") + cache_control,
    }


def _etag_matches(digest: str) -> bool:
    # The WSGI server joins repeated headers with ", "; reading environ skips werkzeug's header objects.
    if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
    return bool(if_none_match) and any(value.strip() in (digest, f'"{digest}"')
                                       for value in if_none_match.split(","))


@blueprint.route("/v2/<repo_name:name>/manifests/<reference:reference>", methods=["GET", "HEAD"])
@pull_access
def get_manifest(repository: PublishedRepository, reference: str) -> Response:
    oci.require_manifest_name(reference)
    found, by_tag = find_manifest(repository, reference)
    if _etag_matches(found.digest):
        return Response(status=304, headers={"ETag": f'"{found.digest}"', "Docker-Content-Digest": found.digest})
    accept = request.environ.get("HTTP_ACCEPT")
    manifest = negotiate(repository, found, by_tag, (accept,) if accept else ())
    # "public" only when anyone may pull it: shared caches (nginx) store public answers for everyone.
    headers = manifest_headers(manifest, by_tag, not may_pull(repository))
    if request.method == "HEAD":
        response = Response(status=200, headers=headers)
        response.headers["Content-Length"] = str(manifest.size)
        return response
    try:
        data = crane_state().tree.manifest_bytes(manifest)
    except ContentMissing:
        raise ManifestUnknown(f"manifest {manifest.digest} is not available") from None
    return Response(data, status=200, headers=headers)
