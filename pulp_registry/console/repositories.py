"""Console pages of repositories: the list, a repository with its tags and pull commands, a manifest, the history.

Each page mirrors a REST view's permission: the list shows what ``GET /repositories/`` would
(``access.readable_repositories``), a repository needs READ on ``/repositories/<id>/``, a manifest
READ on its ``images/`` and the history READ on its ``history/``.
"""
from __future__ import annotations

from typing import Any

from flask import request, url_for

from pulp_registry import history, oci, permissions, public_urls, repositories
from pulp_registry.access import current_caller, readable_repositories
from pulp_registry.console import repository_content, repository_listing
from pulp_registry.api.permissions import PERMISSIONS_RESOURCE
from pulp_registry.console.pages import allowed, console_blueprint, not_found, render, require
from pulp_registry.permissions import READ
from pulp_registry.services import current_services

blueprint = console_blueprint("console_repositories", __name__)

#: Events on one page of a repository's history.
HISTORY_PAGE_SIZE = 50


@blueprint.get("/repositories/")
def repository_list() -> tuple[str, int]:
    """Every repository the caller may read, a page at a time, filtered by a part of the name."""
    services = current_services()
    text = request.args.get("q", "").strip()
    page = repository_listing.list_page(
        services.db, readable_repositories(services, current_caller()), text,
        after=request.args.get("after") or None, before=request.args.get("before") or None,
        last=request.args.get("last") == "1")
    filters = {"q": text} if text else {}
    links = {
        "first": url_for(".repository_list", **filters) if page.before else None,
        "prev": url_for(".repository_list", before=page.before, **filters) if page.before else None,
        "next": url_for(".repository_list", after=page.after, **filters) if page.after else None,
        "last": url_for(".repository_list", last="1", **filters) if page.after else None,
    }
    return render("repositories.html", title="Repositories", section="repositories", page=page, text=text,
                  links=links)


def _repository(repo_id: str, resource_suffix: str = "") -> dict[str, Any]:
    """The repository, once the caller may READ it (the REST resource of the page); else the 403 or 404 page."""
    require(READ, permissions.repository_resource(repo_id) + resource_suffix)
    repo = repositories.get_repository(current_services().db, repo_id)
    if repo is None:
        not_found(f"There is no repository {repo_id!r}.")
    return repo


def _pull_host() -> tuple[str, bool]:
    """Where users pull (Crane's public host) and whether Crane is served over plain HTTP there."""
    settings = current_services().settings
    return (public_urls.public_pull_host(settings),
            public_urls.crane_base_url(settings).startswith("http://"))


@blueprint.get("/repositories/<repo_id>/")
def repository(repo_id: str) -> tuple[str, int]:
    """A repository: its settings, feed, tags (a page of them) and the pull commands of one tag."""
    services = current_services()
    repo = _repository(repo_id)
    tags = repository_content.tag_page(services.db, repo_id, after=request.args.get("after") or None)
    chosen = request.args.get("tag") or None
    pull_tag = repositories.get_tag(services.db, repo_id, chosen) if chosen else None
    if pull_tag is None and tags.tags:
        pull_tag = next((tag for tag in tags.tags if tag["name"] == "latest"), tags.tags[0])
    host, plain_http = _pull_host()
    pulls = {}
    if pull_tag is not None:
        options = {"is_list": pull_tag["media_type"] in oci.LIST_MEDIA_TYPES, "plain_http": plain_http}
        pulls = {"tag": repository_content.pull_commands(host, repo["name"], tag=pull_tag["name"], **options),
                 "digest": repository_content.pull_commands(host, repo["name"], digest=pull_tag["manifest_digest"],
                                                            **options)}
    counts = repositories.repository_counts(services.db, repo_id)
    return render("repository.html", title=repo["name"], section="repositories", repo=repo,
                  info=repositories.repository_json(repo, counts), tags=tags, pull_tag=pull_tag, pulls=pulls,
                  host=host, plain_http=plain_http, first_tags=bool(request.args.get("after")),
                  may_see_access=allowed(READ, PERMISSIONS_RESOURCE))


@blueprint.get("/repositories/<repo_id>/manifests/<digest>")
def manifest(repo_id: str, digest: str) -> tuple[str, int]:
    """A manifest the repository holds: layers and config, or the platforms of a list; its referrers."""
    services = current_services()
    if not repository_content.valid_digest(digest):
        not_found(f"{digest!r} is not a digest (sha256:<64 hex digits>).")
    repo = _repository(repo_id, "images/")
    view = repository_content.manifest_view(services, repo, digest)
    if view is None:
        not_found(f"Repository {repo['name']} holds no manifest {digest}.")
    host, plain_http = _pull_host()
    return render("manifest.html", title=f"{repo['name']}@{digest[:19]}…", section="repositories", repo=repo,
                  manifest=view, pulls=repository_content.pull_commands(host, repo["name"], digest=digest,
                                                                         is_list=view.is_list, plain_http=plain_http),
                  host=host, plain_http=plain_http)


@blueprint.get("/repositories/<repo_id>/history", endpoint="history")
def history_page(repo_id: str) -> tuple[str, int]:
    """What happened to the repository, newest first, like ``GET /repositories/<id>/history/``."""
    services = current_services()
    repo = _repository(repo_id, "history/")
    action = request.args.get("action") or None
    notice = None
    if action is not None and action not in history.ACTIONS:
        notice = f"There is no action {action!r}: showing every event (actions: {', '.join(history.ACTIONS)})."
        action = None
    before = request.args.get("before") or None
    events = history.list_history(services.db, repo_id, limit=HISTORY_PAGE_SIZE + 1, before=before, action=action)
    more = len(events) > HISTORY_PAGE_SIZE
    events = events[:HISTORY_PAGE_SIZE]
    filters = {"action": action} if action else {}
    next_url = url_for(".history", repo_id=repo_id, before=events[-1]["id"], **filters) if more else None
    newest_url = url_for(".history", repo_id=repo_id, **filters) if before else None
    return render("history.html", title=f"History of {repo['name']}", section="repositories", repo=repo,
                  events=events, action=action, actions=history.ACTIONS, notice=notice, next_url=next_url,
                  newest_url=newest_url)
