"""``/v2/<name>/blobs/<digest>``: whether a repository holds a blob (HEAD, how clients skip uploads), its
bytes (all, or one ``Range``), and DELETE, which unlinks it from the repository (orphan clean-up frees it)."""
from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import content, oci, removal, webhooks
from pulp_registry.access import PULL, REMOVE, auth_required
from pulp_registry.registry.responses import blob_response, empty
from pulp_registry.registry_errors import BlobUnknown
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.services import current_services

blueprint = Blueprint("registry_blobs", __name__)


@blueprint.route("/<path:name>/blobs/<digest>", methods=["GET", "HEAD"])
@auth_required(PULL, repository="name")
def get_blob(name: str, digest: str) -> Response:
    services = current_services()
    oci.validate_digest(digest)
    repo = find_repository_by_name(services.db, name)
    size = content.blob_size(services, repo["_id"] if repo else None, digest)
    if size is None:
        raise BlobUnknown(f"blob {digest} is unknown to repository {name}", detail={"digest": digest})
    if request.method == "HEAD":
        return blob_response(None, digest, size)
    byte_range = oci.byte_range(request.headers.get("Range"), size)
    return blob_response(services.storage.open(digest), digest, size, byte_range)


@blueprint.delete("/<path:name>/blobs/<digest>")
@auth_required(REMOVE, repository="name")
def delete_blob(name: str, digest: str) -> Response:
    """Unlink the blob from the repository (202); refused while a manifest of it uses the blob."""
    services = current_services()
    oci.validate_digest(digest)
    repo = content.require_repository_by_name(services.db, name)
    removal.unlink_blob(services, repo, digest)
    if webhooks.wanted(services, "delete"):
        webhooks.notify(services, [webhooks.blob_event(services, "delete", name, digest)])
    return empty(202, {})
