"""``registry-admin repo ...``: create, list, show, protect or open, and delete repositories by registry name."""
from __future__ import annotations

from typing import Any

import click

from admin_client.connection import AdminClient, AdminError, UsageProblem
from admin_client.feeds import (feed_body, feed_fields, feed_options, feed_options_given, pop_feed_options,
                                sync_preview, sync_summary)
from admin_client.listing import (API, OUTPUT_OPTION, echo_json, echo_repositories, human_size, key_values,
                                  render_fields, render_table, repository_by_name, short_time)
from admin_client.prompts import confirm
from admin_client.reference import validate_name
from admin_client.tasks import (TIMEOUT_OPTION, WAIT_OPTION, finish_task, spawned_task_href, task_href, task_id_of,
                                wait_for_task)


def repository_path(repo: dict[str, Any]) -> str:
    return f"{API}/repositories/{repo['id']}/"


def find_repository(client: AdminClient, name: str) -> dict[str, Any]:
    """The repository with registry name ``name``, with its counts (the show call)."""
    validate_name(name)
    return client.get_json(repository_path(repository_by_name(client, name)))


def protection(repo: dict[str, Any]) -> str:
    return "protected" if repo.get("protected") else "public"


@click.group("repo", short_help="Create, show, update and delete repositories.", epilog="""\b
Examples:
  registry-admin repo create team/app --description "the team's app" --protected
  registry-admin repo list
  registry-admin repo show team/app
  registry-admin repo history team/app --limit 20
  registry-admin repo update team/app --public
  registry-admin repo create mirror/nginx --feed https://docker.io --upstream-name nginx --include-tags '1.27*'
  registry-admin repo sync mirror/nginx --dry-run
  registry-admin repo delete team/app --yes""")
def repo_group() -> None:
    """Create, list, show, update and delete repositories (by registry name); show their history."""


@repo_group.command("create", short_help="Create an empty repository.", epilog="""\b
Examples:
  registry-admin repo create team/app
  registry-admin repo create team/app --id app --description "the team's app" --protected
  registry-admin repo create mirror/nginx --feed https://docker.io --upstream-name nginx \\
      --include-tags '1.27*' --exclude-tags '*-perl' --platform linux/amd64 --sync-interval 3600
  printf '%s' "$GHCR_TOKEN" | registry-admin repo create mirror/tool --feed https://ghcr.io \\
      --upstream-name org/tool --upstream-username me --upstream-password-stdin""")
@click.argument("name")
@click.option("--id", "repo_id", metavar="ID", help="Id in admin API paths (default: NAME with '/' as '-').")
@click.option("--description", metavar="TEXT", help="What the repository holds.")
@click.option("--protected", is_flag=True, help="Pulls need a token with pull access (default: anyone may pull).")
@feed_options(update=False)
@click.pass_context
def create_repo(ctx: click.Context, name: str, repo_id: str | None, description: str | None,
                protected: bool, **options: Any) -> None:
    """Create repository NAME (the name docker pull uses), empty until something is pushed or synced.

    With --feed, the repository syncs from an upstream registry (registry-admin
    repo sync NAME, or every --sync-interval seconds). Upstream passwords and
    tokens are prompted for (hidden) or read from stdin, never passed as values.
    """
    validate_name(name)
    feed = pop_feed_options(options)
    body: dict[str, Any] = {"name": name, "protected": protected}
    if repo_id is not None:
        body["id"] = repo_id
    if description is not None:
        body["description"] = description
    if feed_options_given(feed):
        if feed.get("feed_url") is None:
            raise UsageProblem("the upstream options need --feed URL (the registry to sync from)")
        body["feed"] = feed_body(ctx, feed)
    repo = ctx.obj.client().send_json("POST", f"{API}/repositories/", body, expected=(201,))
    synced = ""
    if isinstance(repo.get("feed"), dict):
        synced = f", syncs from {repo['feed'].get('url')} {repo['feed'].get('upstream_name')}"
    click.echo(f"Created repository {repo.get('name', name)} (id {repo.get('id')}, {protection(repo)}{synced}).")


@repo_group.command("list", short_help="List repositories (same as: list).", epilog="""\b
Example:
  registry-admin repo list --output json""")
@OUTPUT_OPTION
@click.pass_context
def list_repos(ctx: click.Context, output: str) -> None:
    """List repositories with their tag count, size and last publication."""
    echo_repositories(ctx.obj.client(), output)


@repo_group.command("show", short_help="Show a repository's details.", epilog="""\b
Example:
  registry-admin repo show team/app --output json""")
@click.argument("name")
@OUTPUT_OPTION
@click.pass_context
def show_repo(ctx: click.Context, name: str, output: str) -> None:
    """Show repository NAME: id, description, protection, tags, size, last publication, feed, next sync."""
    repo = find_repository(ctx.obj.client(), name)
    if output == "json":
        echo_json(repo)
        return
    notes = repo.get("notes") or {}
    click.echo(render_fields([
        ("Name", repo.get("name")),
        ("ID", repo.get("id")),
        ("Description", repo.get("description")),
        ("Protected", "yes (pulls need a token)" if repo.get("protected") else "no (anyone may pull)"),
        ("Tags", repo.get("tag_count", "-")),
        ("Size", human_size(repo.get("total_size"))),
        ("Last published", short_time(repo.get("last_published"))),
        *([("Notes", ", ".join(f"{key}={value}" for key, value in sorted(notes.items())))] if notes else []),
        *feed_fields(repo),
    ]))


@repo_group.command("update", short_help="Protect or open a repository; change its description or feed.",
                    epilog="""\b
Examples:
  registry-admin repo update team/app --protected     # pulls need a token from now on
  registry-admin repo update team/app --public --description "open to all"
  registry-admin repo update mirror/nginx --include-tags '1.28*' --mirror --sync-interval 86400
  printf '%s' "$TOKEN" | registry-admin repo update mirror/tool --upstream-token-stdin
  registry-admin repo update mirror/nginx --remove-feed
""")
@click.argument("name")
@click.option("--protected/--public", "protected", default=None,
              help="Require a token with pull access to pull, or let anyone pull.")
@click.option("--description", metavar="TEXT", help="Set the description.")
@feed_options(update=True)
@WAIT_OPTION
@TIMEOUT_OPTION
@click.pass_context
def update_repo(ctx: click.Context, name: str, protected: bool | None, description: str | None, wait: bool,
                timeout: float, remove_feed: bool, **options: Any) -> None:
    """Make repository NAME protected or public, change its description, or set its feed.

    A change of protection republishes the repository (Crane must learn it);
    the command waits for that unless --no-wait. Feed options change only the
    settings given; the stored upstream credentials stay unless new ones are
    given or --remove-upstream-credentials.
    """
    feed = pop_feed_options(options)
    feed_given = feed_options_given(feed)
    if protected is None and description is None and not feed_given and not remove_feed:
        raise UsageProblem("nothing to change: pass --protected, --public, --description or feed options")
    if remove_feed and feed_given:
        raise UsageProblem("--remove-feed cannot go with other feed options")
    client = ctx.obj.client()
    repo = find_repository(client, name)
    delta: dict[str, Any] = {}
    if protected is not None:
        delta["protected"] = protected
    if description is not None:
        delta["description"] = description
    if remove_feed:
        delta["feed"] = None
    elif feed_given:
        delta["feed"] = feed_body(ctx, feed)
    answer = client.send_json("PUT", repository_path(repo), {"delta": delta}, expected=(200, 202))
    task = finish_task(client, answer, wait, timeout, "publish task")
    updated = answer.get("result") if isinstance(answer, dict) and "spawned_tasks" in answer else answer
    if not isinstance(updated, dict):
        updated = {**repo, **delta}
    published = " and published" if task is not None else ""
    synced = ""
    if "feed" in delta:
        shown = updated.get("feed") if isinstance(updated.get("feed"), dict) else None
        synced = (f", syncs from {shown.get('url')} {shown.get('upstream_name')}" if shown
                  else ", no feed")
    click.echo(f"Updated{published} repository {name}: {protection(updated)}{synced}.")


@repo_group.command("sync", short_help="Sync a repository from its feed.", epilog="""\b
Examples:
  registry-admin repo sync mirror/nginx
  registry-admin repo sync mirror/nginx --dry-run      # what would change, and bytes to fetch
  registry-admin repo sync mirror/nginx --no-wait""")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Store nothing: list the tags a sync would add, move and remove.")
@WAIT_OPTION
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True, metavar="SECONDS",
              help="Seconds to wait for the sync (it goes on after that).")
@OUTPUT_OPTION
@click.pass_context
def sync_repo(ctx: click.Context, name: str, dry_run: bool, wait: bool, timeout: float, output: str) -> None:
    """Sync repository NAME from its feed, with a progress bar; then say what changed.

    With --wait it also waits for the publish that follows, so what was synced can be pulled.

    A sync already waiting or running is followed instead of starting another.
    Exits 1 when the sync ends in error (the reason is printed).
    """
    client = ctx.obj.client()
    repo = find_repository(client, name)
    if not isinstance(repo.get("feed"), dict):
        raise AdminError(f"repository {name} has no feed; set one with: registry-admin repo update {name} --feed URL")
    answer = client.send_json("POST", f"{repository_path(repo)}actions/sync/", {"dry_run": dry_run},
                              expected=(202,))
    what = "sync preview task" if dry_run else "sync task"
    task = finish_task(client, answer, wait, timeout, what, show_progress=True)
    if task is None:
        href = spawned_task_href(answer)
        if output == "json" and href:
            echo_json({"task_id": task_id_of(href)})
        return
    result = task.get("result")
    publish = result.get("publish_task") if isinstance(result, dict) else None
    if publish:  # what was synced is pulled from Crane once this publish has run
        wait_for_task(client, task_href(str(publish)), timeout, what="publish task")
        click.echo(f"Published {name}.", err=True)
    if output == "json":
        echo_json(result)
    else:
        click.echo(sync_preview(name, result) if dry_run else sync_summary(name, result))


@repo_group.command("delete", short_help="Delete a repository and its tags.", epilog="""\b
Example:
  registry-admin repo delete team/app --yes""")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required without a terminal).")
@WAIT_OPTION
@TIMEOUT_OPTION
@click.pass_context
def delete_repo(ctx: click.Context, name: str, yes: bool, wait: bool, timeout: float) -> None:
    """Delete repository NAME with its tags; pulls of it stop working."""
    client = ctx.obj.client()
    repo = find_repository(client, name)
    confirm(ctx, f"delete repository {name} and its {repo.get('tag_count', 0)} tag(s)", yes)
    answer = client.send_json("DELETE", repository_path(repo), expected=(200, 202, 204))
    task = finish_task(client, answer, wait, timeout, "delete task")
    if task is not None or spawned_task_href(answer) is None:
        click.echo(f"Deleted repository {name}.")


HISTORY_ACTIONS = ("create", "push", "sync", "copy", "remove", "delete", "publish", "update")


def history_table(events: list[dict[str, Any]]) -> str:
    rows = [(short_time(event.get("time")), event.get("action") or "-", event.get("user") or "-",
             event.get("task_id") or "-", key_values(event.get("details"))) for event in events]
    return render_table(("TIME", "ACTION", "USER", "TASK", "DETAILS"), rows)


@repo_group.command("history", short_help="Show what happened to a repository.", epilog="""\b
Examples:
  registry-admin repo history team/app
  registry-admin repo history team/app --action push --limit 5 --output json""")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Events to show.")
@click.option("--action", type=click.Choice(HISTORY_ACTIONS), help="Only events of this kind.")
@OUTPUT_OPTION
@click.pass_context
def repo_history(ctx: click.Context, name: str, limit: int, action: str | None, output: str) -> None:
    """Show the history of repository NAME, newest first: pushes, copies, removals, publishes, updates.

    TIME is UTC; USER is who asked; TASK is the task that did it (registry-admin tasks show TASK).
    """
    validate_name(name)
    client = ctx.obj.client()
    repo = repository_by_name(client, name)
    params: dict[str, Any] = {"limit": limit}
    if action:
        params["action"] = action
    events = client.get_json(f"{repository_path(repo)}history/", params=params)
    if output == "json":
        echo_json(events)
    elif not events:
        click.echo(f"Repository {name} has no recorded history.")
    else:
        click.echo(history_table(events))
