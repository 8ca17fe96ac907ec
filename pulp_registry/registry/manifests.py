"""``/v2/<name>/manifests/<reference>`` (PUT, GET, HEAD, DELETE) and ``/v2/<name>/tags/list`` on the admin side.

A manifest PUT stores the exact bytes received, once every blob and child
manifest it names is in the repository, and has the repository published by a
task whose href is answered in ``Pulp-Task`` (``registry-admin push`` waits on it).
A DELETE removes at once (``pulp_registry.removal``) and has the repository
published again the same way; Crane keeps serving the removed content until then.
"""
from __future__ import annotations

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import content, oci, removal, webhooks
from pulp_registry.access import PULL, PUSH, REMOVE, auth_required
from pulp_registry.registry.responses import content_response, empty, json_response, manifest_location
from pulp_registry.registry_errors import ManifestTooLarge, ManifestUnknown
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.services import current_services

blueprint = Blueprint("registry_manifests", __name__)

TASK_HREF = "/pulp/api/v2/tasks/{task_id}/"


def _read_manifest_body(limit: int) -> bytes:
    """At most ``limit`` bytes of the request body; more is refused before it is stored anywhere."""
    too_large = ManifestTooLarge(f"manifest is larger than the limit of {limit} bytes", detail={"limit": limit})
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = request.stream.read(limit + 1 - received)
        if not chunk:
            break
        parts.append(chunk)
        received += len(chunk)
    if received > limit:
        raise too_large
    return b"".join(parts)


@blueprint.put("/<path:name>/manifests/<reference>")
@auth_required(PUSH, repository="name")
def put_manifest(name: str, reference: str) -> Response:
    services = current_services()
    oci.validate_reference(reference)
    raw = _read_manifest_body(services.settings.max_manifest_size)
    pushed = content.push_manifest(services, name, raw, request.headers.get("Content-Type"), reference)
    manifest = pushed.manifest
    headers = {"Location": manifest_location(name, manifest.digest), "Docker-Content-Digest": manifest.digest}
    if pushed.publish_task is not None:
        headers["Pulp-Task"] = TASK_HREF.format(task_id=pushed.publish_task["_id"])
    if manifest.subject is not None:
        headers["OCI-Subject"] = manifest.subject.digest
    if webhooks.wanted(services, "push"):
        webhooks.notify(services, [webhooks.manifest_event(
            services, "push", name, digest=manifest.digest, media_type=manifest.media_type, size=len(raw),
            tag=None if oci.is_digest(reference) else reference)])
    return empty(201, headers)


@blueprint.route("/<path:name>/manifests/<reference>", methods=["GET", "HEAD"])
@auth_required(PULL, repository="name")
def get_manifest(name: str, reference: str) -> Response:
    services = current_services()
    oci.require_manifest_name(reference)
    repo = find_repository_by_name(services.db, name)
    if repo is None:
        raise ManifestUnknown(f"manifest {reference} is unknown: no repository {name}",
                              detail={"reference": reference})
    association, raw = content.get_manifest(services, repo, reference)
    if request.method == "GET" and webhooks.wanted(services, "pull"):
        webhooks.notify(services, [webhooks.manifest_event(
            services, "pull", name, digest=association["digest"], media_type=association["media_type"],
            size=len(raw), tag=None if oci.is_digest(reference) else reference)])
    return content_response(raw, association["media_type"], association["digest"],
                            head=request.method == "HEAD")


@blueprint.delete("/<path:name>/manifests/<reference>")
@auth_required(REMOVE, repository="name")
def delete_manifest(name: str, reference: str) -> Response:
    """By digest: the manifest with its tags, referrers and unused children; by tag: only the tag (202)."""
    services = current_services()
    oci.validate_reference(reference)
    repo = content.require_repository_by_name(services.db, name)
    if oci.is_digest(reference):
        result = removal.remove_manifest(services, repo, reference)
    else:
        result = removal.remove_tag(services, repo, reference)
    if webhooks.wanted(services, "delete"):
        webhooks.notify(services, webhooks.removal_events(services, name, result))
    headers = {}
    if result.get("publish_task") is not None:
        headers["Pulp-Task"] = TASK_HREF.format(task_id=result["publish_task"]["_id"])
    return empty(202, headers)


@blueprint.get("/<path:name>/tags/list")
@auth_required(PULL, repository="name")
def list_tags(name: str) -> Response:
    """Tags in lexical order; ``n`` and ``last`` page through them with a ``Link`` to the next page."""
    services = current_services()
    repo = content.require_repository_by_name(services.db, name)
    limit, last = oci.page_args(request.args)
    if limit == 0:
        return json_response({"name": name, "tags": []})
    tags = content.tag_names(services.db, repo["_id"], last, None if limit is None else limit + 1)
    headers = {}
    if limit is not None and len(tags) > limit:
        tags = tags[:limit]
        headers["Link"] = oci.next_link(f"/v2/{name}/tags/list", tags, limit)
    return json_response({"name": name, "tags": tags}, headers=headers)
