"""The feed options of ``repo create`` / ``repo update``, the feed in ``repo show`` and ``repo sync``'s report.

Upstream secrets are read from a hidden prompt or from stdin
(``--upstream-password-stdin``, ``--upstream-token-stdin``), never from an
option's value (it would be in the shell history and the process list), and
never printed: the server shows only the username and whether a secret is set.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import click

from admin_client.connection import AdminError, UsageProblem
from admin_client.listing import human_size, short_time
from admin_client.prompts import can_ask


def _apply(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def decorate(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


def feed_options(update: bool) -> Callable[[Any], Any]:
    """The options setting a repository's feed; ``update`` adds the ones that undo a setting."""
    options = [
        click.option("--feed", "feed_url", metavar="URL",
                     help="Upstream registry to sync from: https://host[:port] (docker.io for Docker Hub)."),
        click.option("--upstream-name", metavar="NAME",
                     help="The repository's name upstream (default: NAME; 'nginx' on Docker Hub is library/nginx)."),
        click.option("--include-tags", "include_tags", multiple=True, metavar="PATTERN",
                     help="Only sync tags matching PATTERN (glob, or regex with --tag-regex; repeatable)."),
        click.option("--exclude-tags", "exclude_tags", multiple=True, metavar="PATTERN",
                     help="Never sync tags matching PATTERN (repeatable)."),
        click.option("--tag-regex/--tag-glob", "tag_regex", default=None,
                     help="Patterns are regular expressions (default: globs); both match the whole tag."),
        click.option("--tags", "tags", multiple=True, metavar="TAG",
                     help="Sync exactly these tags, without listing the upstream's tags (repeatable)."),
        click.option("--digests", "digests", multiple=True, metavar="DIGEST",
                     help="Sync exactly these manifests by digest, untagged (like --tags; repeatable)."),
        click.option("--platform", "platforms", multiple=True, metavar="OS/ARCH[/VARIANT]",
                     help="Only these platforms of multi-platform images (repeatable; default: all)."),
        click.option("--mirror/--additive", "mirror", default=None,
                     help="Mirror: remove tags gone upstream. Additive (default): only add and move tags."),
        click.option("--upstream-username", metavar="USER",
                     help="Log in upstream as USER; the password is prompted for (hidden) or read from stdin."),
        click.option("--upstream-password-stdin", is_flag=True,
                     help="Read the upstream password from stdin (needs --upstream-username)."),
        click.option("--upstream-token-stdin", is_flag=True,
                     help="Read a bearer token for the upstream from stdin (instead of a password)."),
        click.option("--tls-verify/--no-tls-verify", "tls_verify", default=None,
                     help="Check the upstream's TLS certificate (default) or not."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
                     help="PEM certificates to trust for the upstream."),
        click.option("--max-downloads", type=click.IntRange(1, 32), metavar="N",
                     help="Blobs downloaded at once (1-32, default 4)."),
        click.option("--requests-per-second", type=click.FloatRange(min=0), metavar="R",
                     help="Limit requests to the upstream (default 0: unlimited)."),
        click.option("--sync-interval", type=click.IntRange(min=0), metavar="SECONDS",
                     help="Sync on a schedule every SECONDS (at least 60; 0: only when asked)."),
        click.option("--referrers/--no-referrers", "referrers", default=None,
                     help="Also sync signatures, SBOMs and other referrers (default: yes)."),
        click.option("--publish/--no-publish", "publish", default=None,
                     help="Publish for pulls after a sync that changed something (default: yes)."),
    ]
    if update:
        options += [
            click.option("--no-ca-bundle", is_flag=True, help="Forget the CA bundle."),
            click.option("--all-tags", is_flag=True,
                         help="Drop the tag patterns and explicit tags/digests: sync every tag."),
            click.option("--remove-upstream-credentials", is_flag=True,
                         help="Forget the upstream username and password or token."),
            click.option("--remove-feed", is_flag=True, help="Stop syncing: forget the feed and its credentials."),
        ]
    return _apply(options)


FEED_OPTION_NAMES = ("feed_url", "upstream_name", "include_tags", "exclude_tags", "tag_regex", "tags", "digests",
                     "platforms", "mirror", "upstream_username", "upstream_password_stdin", "upstream_token_stdin",
                     "tls_verify", "ca_bundle", "max_downloads", "requests_per_second", "sync_interval",
                     "referrers", "publish", "no_ca_bundle", "all_tags", "remove_upstream_credentials")


def pop_feed_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The feed options out of a command's keyword arguments (the rest stay)."""
    return {name: kwargs.pop(name) for name in FEED_OPTION_NAMES if name in kwargs}


def feed_options_given(options: dict[str, Any]) -> bool:
    return any(value not in (None, False, ()) for value in options.values())


def _read_stdin_secret(what: str, stdin_text: Callable[[], str]) -> str:
    secret = stdin_text().rstrip("\r\n")
    if not secret:
        raise AdminError(f"no upstream {what} on stdin")
    return secret


def _stdin_text() -> str:
    return sys.stdin.read()


def read_credentials(ctx: click.Context, options: dict[str, Any], url: str | None,
                     stdin_text: Callable[[], str] = _stdin_text) -> dict[str, str] | None:
    """The credentials the options ask to store (None: leave them as they are)."""
    username = options.get("upstream_username")
    password_stdin = options.get("upstream_password_stdin")
    token_stdin = options.get("upstream_token_stdin")
    if password_stdin and token_stdin:
        raise UsageProblem("pass --upstream-password-stdin or --upstream-token-stdin, not both")
    if (password_stdin or token_stdin) and options.get("remove_upstream_credentials"):
        raise UsageProblem("--remove-upstream-credentials cannot go with new credentials")
    if token_stdin:
        credentials = {"token": _read_stdin_secret("token", stdin_text)}
        if username:
            credentials["username"] = username
        return credentials
    if password_stdin:
        if not username:
            raise UsageProblem("--upstream-password-stdin needs --upstream-username")
        return {"username": username, "password": _read_stdin_secret("password", stdin_text)}
    if username:
        if options.get("remove_upstream_credentials"):
            raise UsageProblem("--remove-upstream-credentials cannot go with --upstream-username")
        if not can_ask(ctx):
            raise AdminError("no upstream password: pass --upstream-password-stdin (or --upstream-token-stdin)")
        where = f" at {url}" if url else " upstream"
        password = click.prompt(f"Password of {username}{where}", hide_input=True, err=True)
        if not password:
            raise AdminError("no upstream password given")
        return {"username": username, "password": password}
    return None


def feed_body(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The ``feed`` object of a create or update from the options given (only those)."""
    body: dict[str, Any] = {}
    if options.get("feed_url") is not None:
        body["url"] = options["feed_url"]
    if options.get("upstream_name") is not None:
        body["upstream_name"] = options["upstream_name"]
    if options.get("all_tags"):
        if options.get("include_tags") or options.get("exclude_tags") or options.get("tags") \
                or options.get("digests"):
            raise UsageProblem("--all-tags cannot go with tag patterns, --tags or --digests")
        body.update(include_tags=None, exclude_tags=None, tags=None, digests=None)
    for name in ("include_tags", "exclude_tags", "tags", "digests", "platforms"):
        if options.get(name):
            body[name] = list(options[name])
    if options.get("tag_regex") is not None:
        body["tag_match"] = "regex" if options["tag_regex"] else "glob"
    if options.get("mirror") is not None:
        body["mode"] = "mirror" if options["mirror"] else "additive"
    for name in ("tls_verify", "max_downloads", "requests_per_second", "sync_interval", "referrers", "publish"):
        if options.get(name) is not None:
            body[name] = options[name]
    if options.get("ca_bundle") is not None:
        if options.get("no_ca_bundle"):
            raise UsageProblem("pass --ca-bundle or --no-ca-bundle, not both")
        try:
            body["ca_bundle"] = options["ca_bundle"].read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AdminError(f"cannot read the CA bundle {options['ca_bundle']}: {exc}") from None
    elif options.get("no_ca_bundle"):
        body["ca_bundle"] = None
    credentials = read_credentials(ctx, options, options.get("feed_url"))
    if credentials is not None:
        body["credentials"] = credentials
    elif options.get("remove_upstream_credentials"):
        body["credentials"] = None
    return body


# --- showing ----------------------------------------------------------------------


def interval_text(seconds: Any) -> str:
    if not isinstance(seconds, int) or seconds <= 0:
        return "manual only"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"every {seconds // size} {unit}"
    return f"every {seconds} s"


def tag_selection(feed: dict[str, Any]) -> str:
    if feed.get("tags") or feed.get("digests"):
        explicit = [*(feed.get("tags") or []), *(feed.get("digests") or [])]
        return "only " + ", ".join(explicit)
    kind = "regex" if feed.get("tag_match") == "regex" else "glob"
    parts = []
    if feed.get("include_tags"):
        parts.append(f"matching {', '.join(feed['include_tags'])}")
    if feed.get("exclude_tags"):
        parts.append(f"except {', '.join(feed['exclude_tags'])}")
    return f"all tags {' '.join(parts)} ({kind})" if parts else "all tags"


def login_text(feed: dict[str, Any]) -> str:
    credentials = feed.get("credentials")
    if not isinstance(credentials, dict):
        return "anonymous"
    secret = "secret set" if credentials.get("secret_set") else "no secret"
    return f"{credentials.get('username') or '(token)'} ({secret})"


def feed_fields(repo: dict[str, Any]) -> list[tuple[str, Any]]:
    """The ``repo show`` lines about the feed (one line when there is none)."""
    feed = repo.get("feed")
    if not isinstance(feed, dict):
        return [("Feed", "none (not synced from an upstream)")]
    tls = "verified" if feed.get("tls_verify", True) else "NOT verified"
    if feed.get("ca_bundle"):
        tls += ", own CA bundle"
    rate = feed.get("requests_per_second") or 0
    return [
        ("Feed", f"{feed.get('url')} {feed.get('upstream_name')}"),
        ("Feed mode", feed.get("mode")),
        ("Feed tags", tag_selection(feed)),
        ("Feed platforms", ", ".join(feed.get("platforms") or []) or "all"),
        ("Feed login", login_text(feed)),
        ("Feed TLS", tls),
        ("Feed downloads", f"{feed.get('max_downloads')} at once, "
                           f"{'unlimited requests' if not rate else f'{rate:g} requests/s'}"),
        ("Feed referrers", "yes" if feed.get("referrers", True) else "no"),
        ("Publish on sync", "yes" if feed.get("publish", True) else "no"),
        ("Sync schedule", interval_text(feed.get("sync_interval"))),
        ("Next sync", short_time(repo.get("next_sync"))),
    ]


def _tag_names(values: Any) -> list[str]:
    names = []
    for value in values or []:
        if isinstance(value, dict):
            name = value.get("tag") or value.get("name") or value.get("digest") or "?"
            reason = value.get("reason")
            names.append(f"{name} ({reason})" if reason else str(name))
        else:
            names.append(str(value))
    return names


def _listed(label: str, values: Any) -> str:
    names = _tag_names(values)
    return f"{label} {len(names)}{': ' + ', '.join(names) if names else ''}"


def sync_summary(name: str, result: Any) -> str:
    """What a finished sync did (the task's result), a few lines for people."""
    if not isinstance(result, dict):
        return f"Synced {name}."
    lines = [f"Synced {name}:",
             "  " + _listed("added", result.get("added")),
             "  " + _listed("updated", result.get("updated")),
             "  " + _listed("removed", result.get("removed")),
             "  " + _listed("skipped", result.get("skipped")),
             f"  fetched {result.get('manifests', 0)} manifest(s), {result.get('blobs', 0)} blob(s), "
             f"{human_size(result.get('bytes', 0))}"]
    if result.get("publish_task"):
        lines.append(f"  publish task {result['publish_task']}")
    return "\n".join(lines)


def sync_preview(name: str, result: Any) -> str:
    """What a sync would do (the dry run's result); nothing was stored."""
    if not isinstance(result, dict):
        return f"Dry run of {name}: nothing stored."
    fetch = result.get("bytes_to_fetch", result.get("bytes"))
    lines = [f"Dry run of {name} (nothing stored); a sync would:",
             "  " + _listed("add", result.get("added")),
             "  " + _listed("move", result.get("updated")),
             "  " + _listed("remove", result.get("removed")),
             "  " + _listed("skip", result.get("skipped")),
             f"  fetch {result.get('manifests', 0)} manifest(s), {result.get('blobs', 0)} blob(s), "
             f"{human_size(fetch)} to download"]
    return "\n".join(lines)
