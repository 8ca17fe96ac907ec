"""Console pages: a repository's sync page (feed settings, schedule, last syncs), "Sync now" and "Preview".

The page needs READ on the repository (the REST repository view shows the feed); the buttons
mirror ``POST /pulp/api/v2/repositories/<id>/actions/sync/`` (EXECUTE there, refused in
read-only mode, the same checks) and submit the same task through ``tasks.submit``: ``sync``,
or ``sync_preview`` for a dry run. After a POST the browser goes to the task's page to watch it.
"""
from __future__ import annotations

from flask import flash, redirect, url_for
from werkzeug.wrappers import Response

from pulp_registry import maintenance, permissions, repositories, tasks
from pulp_registry.console import sync_overview
from pulp_registry.console.pages import allowed, console_blueprint, not_found, render, require
from pulp_registry.console.task_listing import TASKS_RESOURCE
from pulp_registry.permissions import EXECUTE, READ
from pulp_registry.services import current_services

blueprint = console_blueprint("console_sync", __name__)


def sync_action_resource(repo_id: str) -> str:
    """The REST path of the sync action, on which the REST view checks EXECUTE."""
    return f"{permissions.repository_resource(repo_id)}actions/sync/"


@blueprint.get("/repositories/<repo_id>/sync")
def sync_page(repo_id: str) -> tuple[str, int]:
    """The feed's settings, the next scheduled sync, the last sync and preview, and the buttons."""
    require(READ, permissions.repository_resource(repo_id))
    db = current_services().db
    repo = repositories.get_repository(db, repo_id)
    if repo is None:
        not_found(f"There is no repository {repo_id}.")
    read_only = maintenance.cached_state(db) is not None
    see_tasks = allowed(READ, TASKS_RESOURCE)
    return render("sync.html", section="repositories", title=f"Sync of {repo['name']}", repo=repo,
                  settings=sync_overview.feed_settings(repo), schedule=sync_overview.schedule(repo, read_only),
                  last_sync=sync_overview.last_task(db, repo_id, "sync") if see_tasks else None,
                  last_preview=sync_overview.last_task(db, repo_id, "sync_preview") if see_tasks else None,
                  see_tasks=see_tasks, may_sync=allowed(EXECUTE, sync_action_resource(repo_id)),
                  deleting=bool(repo.get("deleting")))


def _submit(repo_id: str, dry_run: bool) -> Response:
    """What the REST sync action does, answered with a redirect (to the task, or back with a message)."""
    require(EXECUTE, sync_action_resource(repo_id))
    services = current_services()
    maintenance.refuse_when_read_only(services.db)
    repo = repositories.get_repository(services.db, repo_id)
    if repo is None:
        not_found(f"There is no repository {repo_id}.")
    back = redirect(url_for("console_sync.sync_page", repo_id=repo_id))
    if repo.get("deleting"):
        flash(f"Not synced: repository {repo['name']} is being deleted.", "error")
        return back
    if not repo.get("feed"):
        flash(f"Repository {repo['name']} has no feed to sync from: set its feed first.", "error")
        return back
    task = tasks.submit(services, "sync_preview" if dry_run else "sync", [tasks.repository_resource(repo_id)],
                        repo_id=repo_id)
    what = "Sync preview" if dry_run else "Sync"
    flash(f"{what} task {task['_id']} is {task['state']}.", "success")
    if allowed(READ, tasks.task_href(task["_id"])):
        return redirect(url_for("console_tasks.task", task_id=task["_id"]))
    return back


@blueprint.post("/repositories/<repo_id>/sync/now")
def sync_now(repo_id: str) -> Response:
    return _submit(repo_id, dry_run=False)


@blueprint.post("/repositories/<repo_id>/sync/preview")
def sync_preview(repo_id: str) -> Response:
    return _submit(repo_id, dry_run=True)
