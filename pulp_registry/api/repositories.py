"""``/pulp/api/v2/repositories/``: create, list, show, update and delete repositories; their images and tags."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import repositories, tasks
from pulp_registry.permissions import CREATE, DELETE, EXECUTE, READ, UPDATE
from pulp_registry.services import current_services
from pulp_registry.access import auth_required, current_caller, readable_repositories
from pulp_registry.api.errors import Conflict, InvalidBody, NotFound, api_error_response
from pulp_registry.api.responses import call_report, json_body, json_response

blueprint = Blueprint("api_repositories", __name__)

CREATE_FIELDS = ("name", "id", "description", "notes", "protected")


@blueprint.errorhandler(repositories.RepositoryError)
def _repository_error(exc: repositories.RepositoryError) -> Response:
    if isinstance(exc, repositories.RepositoryNotFound):
        return api_error_response(NotFound(exc.message))
    if isinstance(exc, repositories.RepositoryExists):
        return api_error_response(Conflict(exc.message, field=exc.field))
    return api_error_response(InvalidBody(exc.message, field=exc.field))


def _spawn(task_type: str, repo_id: str) -> dict[str, Any]:
    return tasks.submit(current_services(), task_type, [tasks.repository_resource(repo_id)], repo_id=repo_id)


@blueprint.post("/repositories/")
@auth_required(CREATE)
def create_repository() -> Response:
    body = json_body(CREATE_FIELDS, required=("name",))
    repo = repositories.create_repository(
        current_services().db, body["name"], repo_id=body.get("id"), description=body.get("description", ""),
        notes=body.get("notes"), protected=body.get("protected", False))
    return json_response(repositories.repository_json(repo), 201,
                         {"Location": repositories.repository_href(repo["_id"])})


@blueprint.get("/repositories/")
@auth_required(None)
def list_repositories() -> Response:
    """The repositories the caller may read (all of them with READ on the collection)."""
    services = current_services()
    found = repositories.list_repositories(services.db, name=request.args.get("name"))
    readable = readable_repositories(services, current_caller())
    if readable is not True:
        found = [repo for repo in found if repo["_id"] in readable]
    return json_response([repositories.repository_json(repo) for repo in found])


@blueprint.get("/repositories/<repo_id>/")
@auth_required(READ)
def show_repository(repo_id: str) -> Response:
    db = current_services().db
    repo = repositories.require_repository(db, repo_id)
    return json_response(repositories.repository_json(repo, repositories.repository_counts(db, repo_id)))


@blueprint.put("/repositories/<repo_id>/")
@auth_required(UPDATE)
def update_repository(repo_id: str) -> Response:
    """200 with the repository; 202 with a publish task when ``protected`` changed (Crane must learn it)."""
    body = json_body(("delta",), required=("delta",))
    repo, protected_changed = repositories.update_repository(current_services().db, repo_id, body["delta"])
    if protected_changed:
        return call_report([_spawn("publish", repo_id)], result=repositories.repository_json(repo))
    return json_response(repositories.repository_json(repo))


@blueprint.delete("/repositories/<repo_id>/")
@auth_required(DELETE)
def delete_repository(repo_id: str) -> Response:
    """202 with the delete task; asked again while it is pending, the same task (``tasks.submit``)."""
    repositories.require_repository(current_services().db, repo_id)
    return call_report([_spawn("delete_repository", repo_id)])


@blueprint.post("/repositories/<repo_id>/actions/publish/")
@auth_required(EXECUTE)
def publish_repository(repo_id: str) -> Response:
    """202 with the publish task; while a publish still waits, that one (it will publish what is there)."""
    json_body(())  # no options yet: an unknown field is a mistake worth reporting
    repositories.require_repository(current_services().db, repo_id)
    return call_report([_spawn("publish", repo_id)])


@blueprint.get("/repositories/<repo_id>/images/")
@auth_required(READ)
def list_images(repo_id: str) -> Response:
    db = current_services().db
    repositories.require_repository(db, repo_id)
    return json_response(repositories.list_images(db, repo_id))


@blueprint.get("/repositories/<repo_id>/tags/")
@auth_required(READ)
def list_tags(repo_id: str) -> Response:
    db = current_services().db
    repositories.require_repository(db, repo_id)
    return json_response(repositories.list_tags(db, repo_id))


@blueprint.get("/repositories/<repo_id>/tags/<tag>/")
@auth_required(READ)
def show_tag(repo_id: str, tag: str) -> Response:
    db = current_services().db
    repositories.require_repository(db, repo_id)
    found = repositories.get_tag(db, repo_id, tag)
    if found is None:
        raise NotFound(f"repository {repo_id!r} has no tag {tag!r}")
    return json_response(found)
