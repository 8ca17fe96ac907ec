"""The console's repository list: one page of repositories at a time, by name, with what each holds.

Built to stay fast at 10,000 repositories and more: MongoDB is asked for one page only
(sorted by the unique ``name`` index, paged by a name cursor rather than by skipping),
and tag counts, sizes and the last push or sync are computed for the repositories of
that page alone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from pymongo import ASCENDING, DESCENDING

from pulp_registry import repositories
from pulp_registry.db import Collections, isoformat

#: Repositories on one page of the list.
PAGE_SIZE = 50
#: History actions that change what a repository holds from outside: what "last push or sync" means.
ACTIVITY_ACTIONS = ("push", "sync", "copy")
#: A filter longer than any repository name matches nothing: refuse it before it reaches MongoDB.
MAX_FILTER_LENGTH = 255


@dataclass(frozen=True)
class RepositoryRow:
    """One line of the list."""

    repo_id: str
    name: str
    protected: bool
    deleting: bool
    has_feed: bool
    tag_count: int
    total_size: int
    last_activity: str | None     # ISO 8601 UTC
    last_action: str | None


@dataclass(frozen=True)
class RepositoryPage:
    """A page of the list and where the neighbouring pages start (name cursors)."""

    rows: list[RepositoryRow]
    total: int
    after: str | None = None     # the cursor of the next page (the last name shown), if there is one
    before: str | None = None    # the cursor of the previous page (the first name shown), if there is one


def name_filter(text: str | None) -> dict[str, Any]:
    """The query of a filter box: a case-insensitive substring of the name, never a pattern of the user's."""
    text = (text or "").strip()[:MAX_FILTER_LENGTH]
    return {"name": {"$regex": re.escape(text), "$options": "i"}} if text else {}


def visible_query(readable: bool | set[str], text: str | None) -> dict[str, Any]:
    """Repositories the caller may read (``access.readable_repositories``) whose name contains ``text``."""
    query = name_filter(text)
    if readable is not True:
        query["_id"] = {"$in": sorted(readable)}
    return query


def _with_cursor(query: Mapping[str, Any], operator: str, name: str) -> dict[str, Any]:
    condition = {operator: name}
    if "name" in query:  # the filter's regex and the cursor both constrain the name
        return {"$and": [dict(query), {"name": condition}]}
    return {**query, "name": condition}


def list_page(db: Collections, readable: bool | set[str], text: str | None = None, *, after: str | None = None,
              before: str | None = None, last: bool = False, page_size: int = PAGE_SIZE) -> RepositoryPage:
    """One page of repositories by name: the first, the one after ``after``, the one before ``before``, or the last.

    One more than a page is read to know whether another page follows; counts and sizes are then
    computed for the page's repositories only.
    """
    query = visible_query(readable, text)
    projection = {"name": 1, "protected": 1, "deleting": 1, "feed.url": 1}
    backwards = bool(before) or last
    if after:
        query_page = _with_cursor(query, "$gt", after)
    elif before:
        query_page = _with_cursor(query, "$lt", before)
    else:
        query_page = query
    cursor = db.repositories.find(query_page, projection).sort("name", DESCENDING if backwards else ASCENDING)
    docs = list(cursor.limit(page_size + 1))
    more = len(docs) > page_size  # another page lies further in the direction read
    docs = docs[:page_size]
    if backwards:
        docs.reverse()
    if not docs:
        return RepositoryPage([], db.repositories.count_documents(query))
    first_name, last_name = docs[0]["name"], docs[-1]["name"]
    if backwards:
        has_next = bool(before) and _exists(db, _with_cursor(query, "$gt", last_name))
        has_prev = more
    else:
        has_next = more
        has_prev = bool(after) and _exists(db, _with_cursor(query, "$lt", first_name))
    rows = page_rows(db, docs)
    return RepositoryPage(rows, db.repositories.count_documents(query),
                          after=last_name if has_next else None, before=first_name if has_prev else None)


def _exists(db: Collections, query: Mapping[str, Any]) -> bool:
    return db.repositories.find_one(query, {"_id": 1}) is not None


def page_rows(db: Collections, docs: list[Mapping[str, Any]]) -> list[RepositoryRow]:
    """The rows of repository documents: counts and sizes (``repositories.repository_counts``) and last activity."""
    activity = last_activity(db, [doc["_id"] for doc in docs])
    rows = []
    for doc in docs:
        counts = repositories.repository_counts(db, doc["_id"])
        time, action = activity.get(doc["_id"], (None, None))
        rows.append(RepositoryRow(doc["_id"], doc["name"], bool(doc.get("protected")), bool(doc.get("deleting")),
                                  bool(doc.get("feed")), counts["tag_count"], counts["total_size"], time, action))
    return rows


def last_activity(db: Collections, repo_ids: list[str]) -> dict[str, tuple[str | None, str]]:
    """When each repository was last pushed to, synced or copied into, and which it was (its history).

    The history records every push, sync and copy (``history.record``); its ``(repo_id, time)``
    index answers each repository's newest event without reading the others.
    """
    found: dict[str, tuple[str | None, str]] = {}
    for repo_id in repo_ids:
        event = db.repo_history.find_one({"repo_id": repo_id, "action": {"$in": list(ACTIVITY_ACTIONS)}},
                                         {"time": 1, "action": 1}, sort=[("time", DESCENDING), ("_id", DESCENDING)])
        if event is not None:
            found[repo_id] = (isoformat(event.get("time")), event["action"])
    return found
