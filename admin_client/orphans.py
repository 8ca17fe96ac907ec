"""``registry-admin orphans ...``: content no repository references, what a clean-up would free, and why
a blob or manifest is (not) an orphan. Registry-wide, so super-users only."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from admin_client.listing import API, OUTPUT_OPTION, echo_json, human_size, render_fields, render_table, short_time
from admin_client.reference import validate_digest
from admin_client.tasks import TIMEOUT_OPTION, WAIT_OPTION, finish_task

GRACE_OPTION = click.option("--grace-period", type=click.IntRange(min=0), metavar="SECONDS",
                            help="Only content unreferenced for longer than this [default: the server's "
                                 "orphan_grace_period, 3600].")


def grace_params(grace_period: int | None) -> dict[str, Any]:
    return {} if grace_period is None else {"grace_period": grace_period}


def orphan_rows(listing: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for kind, key in (("manifest", "manifests"), ("blob", "blobs")):
        for item in listing.get(key) or []:
            rows.append((kind, str(item.get("digest")), human_size(item.get("size")), short_time(item.get("created"))))
    return rows


def leftovers_text(leftovers: Any) -> str:
    leftovers = leftovers if isinstance(leftovers, dict) else {}
    return (f"{leftovers.get('uploads', 0)} unfinished upload(s), {leftovers.get('temporary_files', 0)} "
            f"temporary file(s) ({human_size(leftovers.get('bytes', 0))})")


def would_free(listing: dict[str, Any]) -> str:
    """``Would free 12.3 MB: 3 blobs, 1 manifest, 0 unfinished uploads ...`` for ``cleanup --dry-run``."""
    leftovers = listing.get("leftovers") if isinstance(listing.get("leftovers"), dict) else {}
    total = int(listing.get("bytes") or 0) + int(leftovers.get("bytes") or 0)
    return (f"Would free {human_size(total)}: {len(listing.get('blobs') or [])} blob(s), "
            f"{len(listing.get('manifests') or [])} manifest(s), {leftovers_text(leftovers)} "
            f"(grace period {listing.get('grace_period', '?')} s).")


def freed(result: dict[str, Any]) -> str:
    return (f"Freed {human_size(result.get('bytes_freed', 0))}: {result.get('blobs', 0)} blob(s), "
            f"{result.get('manifests', 0)} manifest(s), {result.get('uploads', 0)} unfinished upload(s), "
            f"{result.get('temporary_files', 0)} temporary file(s).")


@click.group("orphans", short_help="List, explain and clean up unreferenced content.", epilog="""\b
Examples:
  registry-admin orphans list
  registry-admin orphans explain sha256:4f1c...
  registry-admin orphans cleanup --dry-run
  registry-admin orphans cleanup --grace-period 0""")
def orphans_group() -> None:
    """Blobs and manifests no repository references any more (after remove, repo delete or failed pushes)."""


@orphans_group.command("list", short_help="List orphaned blobs and manifests.", epilog="""\b
Example:
  registry-admin orphans list --grace-period 600 --output json""")
@GRACE_OPTION
@OUTPUT_OPTION
@click.pass_context
def list_orphans(ctx: click.Context, grace_period: int | None, output: str) -> None:
    """List what a clean-up would remove now: orphaned manifests and blobs, and upload leftovers."""
    listing = ctx.obj.client().get_json(f"{API}/orphans/", params=grace_params(grace_period))
    if output == "json":
        echo_json(listing)
        return
    rows = orphan_rows(listing)
    if rows:
        click.echo(render_table(("KIND", "DIGEST", "SIZE", "CREATED"), rows))
    click.echo(f"{len(rows)} orphan(s), {human_size(listing.get('bytes', 0))}; leftovers: "
               f"{leftovers_text(listing.get('leftovers'))}; grace period {listing.get('grace_period', '?')} s.")


@orphans_group.command("cleanup", short_help="Delete orphaned content (a task).", epilog="""\b
Examples:
  registry-admin orphans cleanup --dry-run
  registry-admin orphans cleanup --grace-period 0 --no-wait""")
@GRACE_OPTION
@click.option("--dry-run", is_flag=True, help="Only say what would be freed (nothing is deleted).")
@WAIT_OPTION
@TIMEOUT_OPTION
@click.pass_context
def cleanup_orphans(ctx: click.Context, grace_period: int | None, dry_run: bool, wait: bool,
                    timeout: float) -> None:
    """Delete orphaned blobs and manifests and upload leftovers older than the grace period, and say
    how many bytes that freed. Content a push is still using is never taken: the grace period protects it."""
    client = ctx.obj.client()
    if dry_run:
        click.echo(would_free(client.get_json(f"{API}/orphans/", params=grace_params(grace_period))))
        return
    report = client.send_json("POST", f"{API}/orphans/actions/cleanup/", grace_params(grace_period),
                              expected=(202,))
    task = finish_task(client, report, wait, timeout, "orphan clean-up task", show_progress=True)
    if task is not None:
        click.echo(freed(task.get("result") if isinstance(task.get("result"), dict) else {}))


def held_by_text(held_by: Any) -> str:
    parts = []
    for holder in held_by or []:
        tags = ", ".join(map(str, holder.get("tags") or [])) or "no tags"
        manifests = holder.get("manifests") or []
        via = f" via {len(manifests)} manifest(s)" if manifests else ""
        parts.append(f"{holder.get('repository') or holder.get('repo_id')} ({tags}){via}")
    return "; ".join(parts) or "-"


@orphans_group.command("explain", short_help="Say why a digest is (not) an orphan.", epilog="""\b
Example:
  registry-admin orphans explain sha256:4f1c... --output json""")
@click.argument("digest")
@OUTPUT_OPTION
@click.pass_context
def explain_orphan(ctx: click.Context, digest: str, output: str) -> None:
    """Say whether blob or manifest DIGEST is stored, whether it is an orphan, and which repositories,
    tags and manifests hold it."""
    validate_digest(digest)
    answer = ctx.obj.client().get_json(f"{API}/orphans/{quote(digest, safe=':')}/")
    if output == "json":
        echo_json(answer)
        return
    click.echo(render_fields([
        ("Digest", answer.get("digest")),
        ("Kind", answer.get("kind")),
        ("Stored", "yes" if answer.get("stored") else "no"),
        ("Size", human_size(answer.get("size"))),
        ("Orphan", "yes" if answer.get("orphan") else "no"),
        ("Held by", held_by_text(answer.get("held_by"))),
        ("Reason", answer.get("reason")),
    ]))
