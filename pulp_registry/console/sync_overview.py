"""What the sync page shows of a repository's feed: its settings (never a secret), the schedule, the last syncs.

The feed is read with ``feeds.feed_from_document`` without credentials and shown through
``feeds.feed_json`` (the REST API's view: a username and whether a secret is set, nothing more).
The next scheduled sync is the repository's ``next_sync`` while the feed has a ``sync_interval``:
``feeds.claim_due`` moves it one interval on when a worker's reaper pass queues the sync
(``sync_schedule.queue_due_syncs``), so a time in the past means "due at the next pass".
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from pulp_registry import feeds, tasks
from pulp_registry.console.task_listing import format_time, progress_bar, sync_result
from pulp_registry.db import Collections, utcnow


def interval_text(seconds: int) -> str:
    """``3600`` -> ``every 1 h``; ``0`` -> ``manual syncs only``."""
    if seconds <= 0:
        return "manual syncs only"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"every {seconds // size} {unit}"
    return f"every {seconds} s"


def next_sync_time(repo: Mapping[str, Any]) -> datetime | None:
    """When the scheduler queues this repository's next sync (None: no feed, or manual syncs only)."""
    feed = feeds.feed_from_document(repo)
    if feed is None or feed.sync_interval <= 0:
        return None
    return feed.next_sync


def schedule(repo: Mapping[str, Any], read_only: bool, now: datetime | None = None) -> dict[str, Any]:
    """The schedule for people: interval, next time, and whether it is due or paused."""
    feed = feeds.feed_from_document(repo)
    interval = feed.sync_interval if feed else 0
    when = next_sync_time(repo)
    now = now or utcnow()
    if when is None:
        note = "No scheduled sync: this feed syncs only when asked (Sync now)."
    elif read_only:
        note = "Scheduled syncs are paused while the registry is read-only; a due sync runs once it is over."
    elif when <= now:
        note = "Due now: a worker queues it at its next pass."
    else:
        note = ""
    return {"interval": interval, "interval_text": interval_text(interval), "next": when,
            "next_text": format_time(when) if when else "", "note": note}


def _patterns(values: list[str]) -> list[str]:
    return [str(value) for value in values or []]


def feed_settings(repo: Mapping[str, Any]) -> list[tuple[str, Any]] | None:
    """``(label, value)`` pairs of the feed's settings; a list value is shown as codes. None: no feed."""
    shown = feeds.feed_json(feeds.feed_from_document(repo))
    if shown is None:
        return None
    credentials = shown["credentials"]
    if credentials is None:
        login = "anonymous"
    else:
        login = f"{credentials.get('username') or '(token)'}, " + (
            "secret stored (never shown)" if credentials.get("secret_set") else "no secret stored")
    explicit = shown["tags"] or shown["digests"]
    rate = shown["requests_per_second"]
    rows: list[tuple[str, Any]] = [
        ("Upstream URL", shown["url"]),
        ("Upstream name", shown["upstream_name"]),
        ("Mode", "mirror (tags gone upstream are removed)" if shown["mode"] == "mirror"
         else "additive (tags gone upstream are kept)"),
    ]
    if explicit:
        rows += [("Tags", _patterns(shown["tags"]) or "none"), ("Digests", _patterns(shown["digests"]) or "none")]
    else:
        rows += [("Include tags", _patterns(shown["include_tags"]) or "all"),
                 ("Exclude tags", _patterns(shown["exclude_tags"]) or "none"),
                 ("Tag patterns", "regular expressions" if shown["tag_match"] == "regex" else "globs")]
    rows += [
        ("Platforms", _patterns(shown["platforms"]) or "all"),
        ("Login", login),
        ("TLS", ("verified" if shown["tls_verify"] else "NOT verified")
         + (", own CA bundle" if shown["ca_bundle"] else "")),
        ("Downloads", f"{shown['max_downloads']} at once, "
                      + (f"{rate:g} requests/s" if rate else "unlimited requests")),
        ("Referrers", "synced" if shown["referrers"] else "not synced"),
        ("Publish after sync", "yes" if shown["publish"] else "no"),
    ]
    return rows


def last_task(db: Collections, repo_id: str, task_type: str) -> dict[str, Any] | None:
    """The newest task of ``task_type`` on the repository, as the page shows it (bar, times, result)."""
    found = tasks.list_tasks(db, (), 1, types=[task_type], resource=tasks.repository_resource(repo_id))
    if not found:
        return None
    task = found[0]
    return {"task_id": task["_id"], "state": task["state"], "bar": progress_bar(task),
            "created_text": format_time(task.get("created")), "finished_text": format_time(task.get("finished")),
            "error": task.get("error"),
            "result": sync_result(task) if task["state"] == tasks.TaskState.FINISHED.value else None,
            "ended": task["state"] in tasks.FINAL, "cancel_requested": bool(task.get("cancel_requested"))}
