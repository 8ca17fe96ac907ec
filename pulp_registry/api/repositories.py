"""``/pulp/api/v2/repositories/``: create, list, show, update and delete repositories; their images and tags."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import repositories, tasks
from pulp_registry.api.auth import auth_required
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


def _services() -> Any:
    from pulp_registry.app import get_services

    return get_services()


def _spawn(task_type: str, repo_id: str) -> dict[str, Any]:
    return tasks.submit(_services(), task_type, [tasks.repository_resource(repo_id)], repo_id=repo_id)


@blueprint.post("/repositories/")
@auth_required("create")
def create_repository() -> Response:
    body = json_body(CREATE_FIELDS, required=("name",))
    repo = repositories.create_repository(
        _services().db, body["name"], repo_id=body.get("id"), description=body.get("description", ""),
        notes=body.get("notes"), protected=body.get("protected", False))
    return json_response(repositories.repository_json(repo), 201,
                         {"Location": repositories.repository_href(repo["_id"])})


@blueprint.get("/repositories/")
@auth_required("read")
def list_repositories() -> Response:
    found = repositories.list_repositories(_services().db, name=request.args.get("name"))
    return json_response([repositories.repository_json(repo) for repo in found])


@blueprint.get("/repositories/<repo_id>/")
@auth_required("read")
def show_repository(repo_id: str) -> Response:
    db = _services().db
    repo = repositories.require_repository(db, repo_id)
    return json_response(repositories.repository_json(repo, repositories.repository_counts(db, repo_id)))


@blueprint.put("/repositories/<repo_id>/")
@auth_required("update")
def update_repository(repo_id: str) -> Response:
    """200 with the repository; 202 with a publish task when ``protected`` changed (Crane must learn it)."""
    body = json_body(("delta",), required=("delta",))
    repo, protected_changed = repositories.update_repository(_services().db, repo_id, body["delta"])
    if protected_changed:
        return call_report([_spawn("publish", repo_id)], result=repositories.repository_json(repo))
    return json_response(repositories.repository_json(repo))


@blueprint.delete("/repositories/<repo_id>/")
@auth_required("delete")
def delete_repository(repo_id: str) -> Response:
    """202 with the delete task; asked again while it is pending, the same task."""
    db = _services().db
    repositories.require_repository(db, repo_id)
    pending = tasks.find_pending(db, "delete_repository", tasks.repository_resource(repo_id),
                                 (tasks.TaskState.WAITING, tasks.TaskState.RUNNING))
    return call_report([pending or _spawn("delete_repository", repo_id)])


@blueprint.post("/repositories/<repo_id>/actions/publish/")
@auth_required("execute")
def publish_repository(repo_id: str) -> Response:
    json_body(())  # no options yet: an unknown field is a mistake worth reporting
    repositories.require_repository(_services().db, repo_id)
    return call_report([_spawn("publish", repo_id)])


@blueprint.get("/repositories/<repo_id>/images/")
@auth_required("read")
def list_images(repo_id: str) -> Response:
    db = _services().db
    repositories.require_repository(db, repo_id)
    return json_response(repositories.list_images(db, repo_id))


@blueprint.get("/repositories/<repo_id>/tags/")
@auth_required("read")
def list_tags(repo_id: str) -> Response:
    db = _services().db
    repositories.require_repository(db, repo_id)
    return json_response(repositories.list_tags(db, repo_id))


@blueprint.get("/repositories/<repo_id>/tags/<tag>/")
@auth_required("read")
def show_tag(repo_id: str, tag: str) -> Response:
    db = _services().db
    repositories.require_repository(db, repo_id)
    found = repositories.get_tag(db, repo_id, tag)
    if found is None:
        raise NotFound(f"repository {repo_id!r} has no tag {tag!r}")
    return json_response(found)
