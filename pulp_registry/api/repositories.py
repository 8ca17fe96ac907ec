"""``/pulp/api/v2/repositories/``: create, list, show, update and delete repositories; their images and tags."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from werkzeug.wrappers import Response

from pulp_registry import history, repositories, tasks, webhooks
from pulp_registry.permissions import CREATE, DELETE, EXECUTE, READ, UPDATE
from pulp_registry.services import current_services
from pulp_registry.access import auth_required, current_caller, readable_repositories
from pulp_registry.maintenance import refused_while_read_only
from pulp_registry.api.errors import ApiError, Conflict, InvalidBody, NotFound, api_error_response
from pulp_registry.registry_errors import RegistryError
from pulp_registry.api.responses import call_report, json_body, json_response

blueprint = Blueprint("api_repositories", __name__)

CREATE_FIELDS = ("name", "id", "description", "notes", "protected", "feed")


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
@refused_while_read_only
def create_repository() -> Response:
    body = json_body(CREATE_FIELDS, required=("name",))
    repo = repositories.create_repository(
        current_services().db, body["name"], repo_id=body.get("id"), description=body.get("description", ""),
        notes=body.get("notes"), protected=body.get("protected", False), user=current_caller().login,
        feed=body.get("feed"))
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
@refused_while_read_only
def update_repository(repo_id: str) -> Response:
    """200 with the repository; 202 with a publish task when ``protected`` changed (Crane must learn it)."""
    body = json_body(("delta",), required=("delta",))
    repo, protected_changed = repositories.update_repository(current_services().db, repo_id, body["delta"],
                                                             user=current_caller().login)
    if protected_changed:
        return call_report([_spawn("publish", repo_id)], result=repositories.repository_json(repo))
    return json_response(repositories.repository_json(repo))


@blueprint.delete("/repositories/<repo_id>/")
@auth_required(DELETE)
@refused_while_read_only
def delete_repository(repo_id: str) -> Response:
    """202 with the delete task; asked again while it is pending, the same task (``tasks.submit``)."""
    repositories.require_repository(current_services().db, repo_id)
    return call_report([_spawn("delete_repository", repo_id)])


@blueprint.post("/repositories/<repo_id>/actions/publish/")
@auth_required(EXECUTE)
@refused_while_read_only
def publish_repository(repo_id: str) -> Response:
    """202 with the publish task; while a publish still waits, that one (it will publish what is there)."""
    json_body(())  # no options yet: an unknown field is a mistake worth reporting
    repositories.require_repository(current_services().db, repo_id)
    return call_report([_spawn("publish", repo_id)])


@blueprint.post("/repositories/<repo_id>/actions/sync/")
@auth_required(EXECUTE)
@refused_while_read_only
def sync_repository(repo_id: str) -> Response:
    """202 with the ``sync`` task from the repository's feed; with ``dry_run``, a ``sync_preview`` task
    that only says what a sync would do.

    The task's only argument is the repository id: the worker reads the feed and its credentials
    itself, so no secret is ever part of a task.
    """
    body = json_body(("dry_run",))
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidBody("dry_run must be true or false", field="dry_run")
    services = current_services()
    repo = repositories.require_repository(services.db, repo_id)
    if repo.get("deleting"):
        raise Conflict(f"repository {repo['name']} is being deleted")
    if not repo.get("feed"):
        raise InvalidBody(f"repository {repo['name']} has no feed to sync from: set its feed "
                          "(an update with delta.feed.url) first", field="feed")
    task = tasks.submit(services, "sync_preview" if dry_run else "sync", [tasks.repository_resource(repo_id)],
                        repo_id=repo_id)
    return call_report([task])


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


@blueprint.post("/repositories/<repo_id>/actions/remove/")
@auth_required(DELETE)
@refused_while_read_only
def remove_content(repo_id: str) -> Response:
    """Remove tags and manifests (with the referrers only they hold): 202 with the publish that follows.

    Every tag and digest is checked before anything is removed: an unknown one is a 404 naming it.
    """
    from pulp_registry.removal import remove_content as remove

    body = json_body(("tags", "digests"))
    for field in ("tags", "digests"):
        values = body.get(field, [])
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise InvalidBody(f"{field} must be a list of strings", field=field)
    if not body.get("tags") and not body.get("digests"):
        raise InvalidBody("name what to remove: tags or digests", field="tags")
    services = current_services()
    repo = repositories.require_repository(services.db, repo_id)
    if repo.get("deleting"):
        raise Conflict(f"repository {repo['name']} is being deleted")
    try:
        result = remove(services, repo, tags=body.get("tags", []), digests=body.get("digests", []))
    except RegistryError as exc:
        raise _api_error(exc) from None
    publish_task = result.pop("publish_task", None)
    if webhooks.wanted(services, "delete"):
        webhooks.notify(services, webhooks.removal_events(services, repo["name"], result))
    return call_report([publish_task] if publish_task else [], result=result)


def _api_error(exc: RegistryError) -> ApiError:
    """A registry error of the removal functions in the REST API's form."""
    if exc.status == 404:
        return NotFound(exc.message)
    if exc.status in (403, 409):
        return Conflict(exc.message)
    return InvalidBody(exc.message)


@blueprint.get("/repositories/<repo_id>/history/")
@auth_required(READ)
def repository_history(repo_id: str) -> Response:
    """What happened to the repository, newest first; ``before`` (an event id) pages on."""
    db = current_services().db
    repositories.require_repository(db, repo_id)
    try:
        limit = int(request.args.get("limit", 100))
    except ValueError:
        raise InvalidBody("limit must be a whole number", field="limit") from None
    if not 1 <= limit <= history.MAX_PAGE:
        raise InvalidBody(f"limit must be between 1 and {history.MAX_PAGE}", field="limit")
    action = request.args.get("action") or None
    if action is not None and action not in history.ACTIONS:
        raise InvalidBody(f"unknown action {action!r} (known: {', '.join(history.ACTIONS)})", field="action")
    return json_response(history.list_history(db, repo_id, limit=limit, before=request.args.get("before"),
                                               action=action))
