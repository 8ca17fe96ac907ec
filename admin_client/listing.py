"""``registry-admin list`` (repositories) and ``registry-admin list NAME`` (its tags): tables, or JSON."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Sequence

import click

from admin_client.connection import API, AdminClient, AdminError
from admin_client.reference import InvalidReference, validate_name

MEDIA_TYPE_NAMES = {
    "application/vnd.docker.distribution.manifest.v2+json": "docker",
    "application/vnd.docker.distribution.manifest.list.v2+json": "docker list",
    "application/vnd.oci.image.manifest.v1+json": "oci",
    "application/vnd.oci.image.index.v1+json": "oci index",
}
OUTPUT_OPTION = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="Print a table, or JSON for scripts.")


def human_size(size: Any) -> str:
    if not isinstance(size, (int, float)):
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def short_time(value: Any) -> str:
    """An ISO 8601 time from the API as ``YYYY-MM-DD HH:MM`` UTC, ``-`` when there is none."""
    if not value:
        return "-"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def short_digest(digest: Any) -> str:
    return str(digest).split(":", 1)[-1][:12] if digest else "-"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(header)] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def render_fields(fields: Sequence[tuple[str, Any]]) -> str:
    """``Label:  value`` lines, values aligned; for one object (``show`` commands)."""
    width = max((len(label) for label, _ in fields), default=0) + 1
    return "\n".join(f"{label + ':':<{width}}  {'-' if value in (None, '') else value}".rstrip()
                     for label, value in fields)


def comma_list(values: Any) -> str:
    """``a, b`` for a list from the API, ``-`` for an empty one."""
    return ", ".join(str(value) for value in values) if values else "-"


def key_values(values: Any) -> str:
    """``tags=1.2,1.3 manifests=2``: a result or details object on one line (``-`` when empty)."""
    if not isinstance(values, dict) or not values:
        return "-" if values in (None, "", {}, []) else str(values)
    parts = []
    for key, value in sorted(values.items()):
        if isinstance(value, list):
            value = ",".join(str(item) for item in value) or "-"
        elif isinstance(value, dict):
            value = ",".join(f"{k}:{v}" for k, v in sorted(value.items())) or "-"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def repositories_with_counts(client: AdminClient) -> list[dict[str, Any]]:
    """Every repository, each with its tag count and size (from the show call)."""
    shown = []
    for repo in client.get_json(f"{API}/repositories/"):
        response = client.request("GET", f"{API}/repositories/{repo['id']}/", expected=(200, 404))
        if response.status_code == 200:  # a repository deleted meanwhile is simply not listed
            shown.append(response.json())
    return shown


def repository_by_name(client: AdminClient, name: str) -> dict[str, Any]:
    found = client.get_json(f"{API}/repositories/", params={"name": name})
    if not found:
        raise AdminError(f"no repository named {name!r} (see registry-admin list)")
    return found[0]


def tags_of(client: AdminClient, repo: dict[str, Any]) -> list[dict[str, Any]]:
    """The repository's tags: ``pushed`` is when the tag was last pushed, ``image_pushed`` when its image
    first arrived in the repository; platforms come from the images call."""
    tags = client.get_json(f"{API}/repositories/{repo['id']}/tags/")
    images = {image["digest"]: image for image in client.get_json(f"{API}/repositories/{repo['id']}/images/")}
    rows = []
    for tag in tags:
        image = images.get(tag.get("manifest_digest"), {})
        rows.append({
            "tag": tag.get("name"),
            "digest": tag.get("manifest_digest"),
            "media_type": tag.get("media_type") or image.get("media_type"),
            "size": tag.get("size", image.get("size")),
            # One meaning of "pushed" everywhere: when this tag was last pushed (moved to its image).
            "pushed": tag.get("updated") or image.get("pushed"),
            "image_pushed": image.get("pushed"),
            "platforms": image.get("platforms") or [],
        })
    return rows


LIST_REPOS_HINT = ("note: 'list repos' is the old spelling; 'registry-admin list' (or 'repo list') "
                   "lists repositories")


@click.command("list", short_help="List repositories, or the tags of one.", epilog="""\b
Examples:
  registry-admin list                     # repositories (same as: repo list)
  registry-admin list my/app              # the tags of my/app
  registry-admin list my/app --output json""")
@click.argument("name", required=False)
@OUTPUT_OPTION
@click.pass_context
def list_command(ctx: click.Context, name: str | None, output: str) -> None:
    """List repositories; with NAME, the tags of repository NAME.

    Tags are listed with short digests, types, sizes and PUSHED: when the tag
    was last pushed (pointed at its current image), UTC; --output json also
    gives image_pushed, when that image first arrived in the repository.

    The old spelling 'list repos' still lists repositories, unless a
    repository is named repos: then it lists that repository's tags.
    """
    client = ctx.obj.client()
    if name is None:
        echo_repositories(client, output)
        return
    try:
        validate_name(name)
    except InvalidReference as exc:
        raise AdminError(str(exc)) from None
    found = client.get_json(f"{API}/repositories/", params={"name": name})
    if not found and name == "repos":
        click.echo(LIST_REPOS_HINT, err=True)
        echo_repositories(client, output)
        return
    if not found:
        raise AdminError(f"no repository named {name!r} (see registry-admin list)")
    echo_tags(client, found[0], output)


def echo_repositories(client: AdminClient, output: str) -> None:
    """The repositories table (or JSON) of ``list`` and ``repo list``."""
    repos = repositories_with_counts(client)
    if output == "json":
        echo_json(repos)
        return
    if not repos:
        click.echo("No repositories yet. Push one with: registry-admin push NAME:TAG --archive PATH")
        return
    rows = [(repo.get("name"), repo.get("id"), repo.get("tag_count", "-"), human_size(repo.get("total_size")),
             short_time(repo.get("last_published"))) for repo in repos]
    click.echo(render_table(("NAME", "ID", "TAGS", "SIZE", "LAST PUBLISHED"), rows))


def echo_tags(client: AdminClient, repo: dict[str, Any], output: str) -> None:
    """The tags table (or JSON) of ``list NAME``."""
    rows = tags_of(client, repo)
    if output == "json":
        echo_json({"repository": repo, "tags": rows})
        return
    if not rows:
        click.echo(f"Repository {repo.get('name')} has no tags.")
        return
    table = []
    for row in rows:
        kind = MEDIA_TYPE_NAMES.get(row["media_type"] or "", row["media_type"] or "-")
        if row["platforms"]:
            kind = f"{kind} ({', '.join(row['platforms'])})"
        table.append((row["tag"], short_digest(row["digest"]), kind, human_size(row["size"]),
                      short_time(row["pushed"])))
    click.echo(render_table(("TAG", "DIGEST", "TYPE", "SIZE", "PUSHED"), table))
