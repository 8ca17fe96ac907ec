"""``registry-admin copy`` (promote images between repositories) and ``registry-admin remove`` (tags, manifests).

Both name images as users pull them: ``NAME:TAG`` or ``NAME@DIGEST``, optionally
prefixed with this registry's pull host (``127.0.0.1:5000/dev/app:1.2``, the
reference ``push`` prints).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import click

from admin_client.connection import AdminClient, UsageProblem
from admin_client.listing import API, repository_by_name
from admin_client.prompts import can_ask, confirm
from admin_client.reference import ImageRef, InvalidReference, parse_image_ref, registry_host_of, strip_registry_host
from admin_client.tasks import TIMEOUT_OPTION, WAIT_OPTION, finish_task, task_href, wait_for_task


def own_hosts(client: AdminClient) -> set[str]:
    """The hosts a reference may name for this registry: the pull host and the admin URL's host."""
    return {client.pull_host(), urlsplit(client.base_url).netloc}


def parse_refs(client: AdminClient | None, texts: tuple[str, ...] | list[str]) -> list[ImageRef]:
    """Parse references, dropping this registry's host; the client is asked for its hosts only when needed."""
    hosts: set[str] | None = None
    parsed = []
    for text in texts:
        if registry_host_of(text) is not None and client is not None:
            hosts = own_hosts(client) if hosts is None else hosts
            text = strip_registry_host(text, hosts)
        parsed.append(parse_image_ref(text))
    return parsed


@dataclass
class CopyRequest:
    """The body of ``POST /actions/copy/`` built from ``copy SOURCE... TARGET``."""

    source: str
    target: str
    tags: list[str] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)
    tag_pattern: str | None = None
    target_tag: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"source": self.source, "target": self.target}
        for key in ("tags", "digests", "tag_pattern", "target_tag"):
            if getattr(self, key):
                body[key] = getattr(self, key)
        return body


def copy_request(sources: list[ImageRef], target: ImageRef, tag_pattern: str | None) -> CopyRequest:
    """Check the grammar: every SOURCE in one repository; TARGET is NAME, or NAME:TAG for a single image."""
    names = sorted({source.name for source in sources})
    if len(names) != 1:
        raise UsageProblem(f"every SOURCE must be in the same repository; got {', '.join(names)}")
    if target.digest:
        raise UsageProblem(f"TARGET {target} names a digest; give a repository NAME, or NAME:TAG for one image")
    request = CopyRequest(names[0], target.name, tag_pattern=tag_pattern)
    for source in sources:
        if source.tag and source.tag not in request.tags:
            request.tags.append(source.tag)
        if source.digest and source.digest not in request.digests:
            request.digests.append(source.digest)
    if not (request.tags or request.digests or tag_pattern):
        raise UsageProblem(f"say what to copy from {names[0]}: {names[0]}:TAG, {names[0]}@DIGEST or --tags PATTERN")
    if target.tag:
        if tag_pattern or len(request.tags) + len(request.digests) != 1:
            raise UsageProblem(f"TARGET {target} names a tag: copy exactly one SOURCE tag or digest to it "
                               "(without --tags), or give TARGET without a tag to keep the tag names")
        request.target_tag = target.tag
    if request.source == request.target and not request.target_tag:
        raise UsageProblem(f"SOURCE and TARGET are both {request.source}; name another repository, or a new tag")
    return request


def pull_references(host: str, target: str, result: dict[str, Any], request: CopyRequest) -> list[str]:
    """What to pull after a copy: each copied tag, or the digest when no tag came along."""
    tags = [str(tag) for tag in result.get("tags") or []]
    if request.target_tag and request.target_tag not in tags:
        tags.append(request.target_tag)
    if tags:
        return [f"{host}/{target}:{tag}" for tag in tags]
    return [f"{host}/{target}@{digest}" for digest in request.digests]


def copy_summary(result: dict[str, Any]) -> str:
    tags = result.get("tags") or []
    counts = ", ".join(f"{result.get(key, 0)} {key[:-1]}(s)" for key in ("manifests", "blobs", "referrers"))
    named = f" ({', '.join(map(str, tags))})" if tags else ""
    return (f"Copied {len(tags)} tag(s){named} from {result.get('source')} to {result.get('target')}: {counts}.")


@click.command("copy", short_help="Copy (promote) images to another repository.", epilog="""\b
Examples:
  registry-admin copy dev/app:1.2 prod/app                 # tag 1.2 into prod/app
  registry-admin copy dev/app:1.2 prod/app:1.2-prod        # under another tag
  registry-admin copy dev/app:1.2 dev/app:1.3 prod/app     # several tags
  registry-admin copy dev/app@sha256:4f1c... prod/app:stable
  registry-admin copy dev/app prod/app --tags 'v1.*'       # every tag matching a pattern""")
@click.argument("references", nargs=-1, required=True, metavar="SOURCE... TARGET")
@click.option("--tags", "tag_pattern", metavar="PATTERN", help="Copy every tag of SOURCE matching this shell-style "
              "pattern (v1.*).")
@WAIT_OPTION
@TIMEOUT_OPTION
@click.pass_context
def copy(ctx: click.Context, references: tuple[str, ...], tag_pattern: str | None, wait: bool,
         timeout: float) -> None:
    """Copy images from one repository to another: each SOURCE (NAME:TAG or NAME@DIGEST, all in one
    repository; or a bare NAME with --tags) into TARGET (NAME, or NAME:TAG for a single image).

    Tags keep their names unless TARGET gives one. The server copies the
    manifests with their blobs and referrers (signatures, SBOMs), creates
    TARGET if needed and publishes it; then the pull references are printed.
    """
    if len(references) < 2:
        raise UsageProblem("give at least one SOURCE and a TARGET, e.g. registry-admin copy dev/app:1.2 prod/app")
    client = ctx.obj.client()
    try:
        *sources, target = parse_refs(client, references)
    except InvalidReference as exc:
        raise UsageProblem(str(exc)) from None
    request = copy_request(sources, target, tag_pattern)
    report = client.send_json("POST", f"{API}/actions/copy/", request.body(), expected=(202,))
    task = finish_task(client, report, wait, timeout, "copy task", show_progress=True)
    if task is None:
        return
    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    click.echo(copy_summary({"source": request.source, "target": request.target, **result}), err=True)
    publish = result.get("publish_task")
    if publish:
        wait_for_task(client, task_href(str(publish)), timeout, what="publish task")
        click.echo(f"Published {request.target}.", err=True)
    for reference in pull_references(client.pull_host(), request.target, result, request):
        click.echo(reference)


def remove_summary(name: str, result: dict[str, Any]) -> str:
    parts = []
    for key, label in (("tags", "tag"), ("manifests", "manifest"), ("referrers", "referrer")):
        values = [str(value) for value in result.get(key) or []]
        if values:
            parts.append(f"{len(values)} {label}(s) {', '.join(values)}")
    return f"Removed from {name}: {'; '.join(parts) or 'nothing'}."


@click.command("remove", short_help="Remove tags or manifests from a repository.", epilog="""\b
Examples:
  registry-admin remove team/app:1.0                       # the tag; its image stays if other tags use it
  registry-admin remove team/app:1.0 team/app:1.1
  registry-admin remove team/app@sha256:4f1c... --yes      # the manifest, its tags and its referrers""")
@click.argument("references", nargs=-1, required=True, metavar="NAME:TAG|NAME@DIGEST...")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing manifests (by digest).")
@WAIT_OPTION
@TIMEOUT_OPTION
@click.pass_context
def remove(ctx: click.Context, references: tuple[str, ...], yes: bool, wait: bool, timeout: float) -> None:
    """Remove tags (NAME:TAG) or manifests (NAME@DIGEST, with their tags and referrers) from one repository,
    then publish it so pulls stop finding them.

    Removing by digest asks first on a terminal (--yes skips the question).
    Blobs nobody references any more become orphans: see registry-admin orphans.
    """
    client = ctx.obj.client()
    try:
        refs = parse_refs(client, references)
    except InvalidReference as exc:
        raise UsageProblem(str(exc)) from None
    names = sorted({ref.name for ref in refs})
    if len(names) != 1:
        raise UsageProblem(f"remove from one repository at a time; got {', '.join(names)}")
    bare = [str(ref) for ref in refs if not ref.tag and not ref.digest]
    if bare:
        raise UsageProblem(f"name a tag or a digest: {bare[0]}:TAG or {bare[0]}@DIGEST "
                           "(registry-admin repo delete removes a whole repository)")
    name = names[0]
    tags = list(dict.fromkeys(ref.tag for ref in refs if ref.tag))
    digests = list(dict.fromkeys(ref.digest for ref in refs if ref.digest))
    repo = repository_by_name(client, name)
    if digests and not yes and can_ask(ctx):
        confirm(ctx, f"remove {len(digests)} manifest(s) from {name} with their tags and referrers", yes)
    body: dict[str, Any] = {}
    if tags:
        body["tags"] = tags
    if digests:
        body["digests"] = digests
    report = client.send_json("POST", f"{API}/repositories/{repo['id']}/actions/remove/", body, expected=(202, 200))
    result = report.get("result") if isinstance(report, dict) and isinstance(report.get("result"), dict) else {}
    click.echo(remove_summary(name, result))
    if finish_task(client, report, wait, timeout, "publish task") is not None:
        click.echo(f"Published {name}.", err=True)
