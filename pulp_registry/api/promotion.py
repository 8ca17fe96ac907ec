"""``/pulp/api/v2/actions/copy/``: copy (promote) images between repositories as a task."""
from __future__ import annotations

from typing import Any

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry import oci, promotion, repositories, tasks
from pulp_registry.access import PULL, PUSH, auth_required, current_caller, may
from pulp_registry.api.errors import Conflict, Forbidden, InvalidBody, NotFound
from pulp_registry.api.responses import call_report, json_body
from pulp_registry.maintenance import refused_while_read_only
from pulp_registry.registry_errors import RegistryError
from pulp_registry.services import current_services

blueprint = Blueprint("api_promotion", __name__)

COPY_FIELDS = ("source", "target", "tags", "digests", "tag_pattern", "target_tag")


def _name(body: dict[str, Any], field: str) -> str:
    try:
        return oci.validate_name(body[field])
    except (RegistryError, TypeError):
        raise InvalidBody(f"invalid repository name {body[field]!r} in {field!r}", field=field) from None


@blueprint.post("/actions/copy/")
@auth_required(None)  # the repositories are in the body: checked below with the registry's pull and push
@refused_while_read_only
def copy_images() -> Response:
    """202 with the ``copy`` task; the target is created now if missing, published by the task."""
    services = current_services()
    body = json_body(COPY_FIELDS, required=("source", "target"))
    source_name, target_name = _name(body, "source"), _name(body, "target")
    caller = current_caller()
    source = repositories.find_repository_by_name(services.db, source_name)
    if source is None or not may(services, caller, PULL, source_name):
        # Alike for a name that does not exist and one the caller may not read.
        raise NotFound(f"repository {source_name} does not exist")
    if repositories.being_deleted(source):
        raise Conflict(f"repository {source_name} is being deleted", field="source")
    if not may(services, caller, PUSH, target_name):
        raise Forbidden(f"user {caller.login!r} may not push to {target_name}")
    try:
        selected = promotion.select_manifests(services.db, source, body.get("tags", []), body.get("digests", []),
                                              body.get("tag_pattern"), body.get("target_tag"))
    except promotion.CopyError as exc:
        raise InvalidBody(exc.message, field=exc.field) from None
    if not selected:
        raise InvalidBody("nothing to copy", field="tags")
    try:
        target = repositories.ensure_repository(services.db, target_name)
    except (repositories.RepositoryError, RegistryError) as exc:  # being deleted, or too many creations
        raise Conflict(exc.message, field="target") from None
    task = tasks.submit(services, "copy", [tasks.repository_resource(target["_id"])],
                        source_repo_id=source["_id"], target_repo_id=target["_id"],
                        tags=list(body.get("tags", [])), digests=list(body.get("digests", [])),
                        tag_pattern=body.get("tag_pattern"), target_tag=body.get("target_tag"))
    return call_report([task])
