"""Feeds: the upstream registry a repository syncs from, its filters, schedule and credentials.

A repository document may carry ``feed``, a subdocument of settings (no user data as
field names), and ``next_sync`` (when the scheduler syncs it next; ``None`` for manual
syncs only). Credentials live in their own collection, ``feed_credentials``
(``{_id: repo_id, username, password, token}``): never returned by the API (which
shows ``{"username": ..., "secret_set": bool}``, kept in the feed as ``credentials``),
never logged, never in task arguments.

``feed_settings.validate_feed`` checks a whole feed body; an update of a feed is merged key by key
into the stored one (``merge_feed``: a ``null`` value resets a key to its default)
and the result validated as a whole, so invalid settings change nothing. The
repository document is written by ``repositories.py`` (one conditional write per
update); the credentials documents only here.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping

from pymongo import ReturnDocument

from pulp_registry.db import PROCESS_GUARD, Collections, as_utc
from pulp_registry.feed_settings import (CREDENTIAL_KEYS, DEFAULT_VARIANTS, DEFAULTS, FeedError, compiled_pattern,
                                         validate_feed)


@dataclass(frozen=True)
class Feed:
    """A repository's feed as the sync engine reads it: settings and (``get_feed``) the secrets."""

    url: str
    upstream_name: str
    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    tag_match: str = "glob"
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    mode: str = "additive"
    tls_verify: bool = True
    ca_bundle: str | None = field(default=None, repr=False)
    max_downloads: int = 4
    requests_per_second: float = 0.0
    sync_interval: int = 0
    next_sync: datetime | None = None
    referrers: bool = True
    publish: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    #: Whether a password or token is stored (known without loading it).
    secret_set: bool = False
    repo_id: str | None = None

    @property
    def explicit(self) -> bool:
        """Explicit tags or digests: the upstream's tag list is not walked."""
        return bool(self.tags or self.digests)


# --- updates: what to store -------------------------------------------------------


@dataclass(frozen=True)
class FeedChange:
    """What an update of a repository's feed writes: the feed subdocument (None: no feed),
    ``next_sync`` (when ``set_next_sync``), and the credentials to store (``credentials``,
    when ``set_credentials``; None removes them)."""

    feed: dict[str, Any] | None
    set_next_sync: bool
    next_sync: datetime | None
    set_credentials: bool
    credentials: dict[str, str | None] | None = field(default=None, repr=False)


def _credentials_summary(credentials: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if credentials is None:
        return None
    return {"username": credentials.get("username"),
            "secret_set": bool(credentials.get("password") or credentials.get("token"))}


def merge_feed(stored: Mapping[str, Any] | None, delta: Any, *, repository_name: str,
               now: datetime) -> FeedChange:
    """The change ``delta`` (a feed object merged key by key into ``stored``, or ``None``) makes.

    A key given as ``null`` resets it to its default; ``credentials`` left out keep the stored
    ones, ``null`` removes them. ``next_sync`` moves to ``now + sync_interval`` when the interval
    is given (or the feed is new), and goes with the feed.
    """
    if delta is None:
        return FeedChange(None, True, None, stored is not None and stored.get("credentials") is not None, None)
    if not isinstance(delta, Mapping):
        raise FeedError("feed", "feed must be an object (or null to remove the feed)")
    base = {key: value for key, value in (stored or {}).items() if key in DEFAULTS}
    merged = {**base, **{key: value for key, value in delta.items() if key != "credentials"}}
    if "credentials" in delta:
        merged["credentials"] = delta["credentials"]
    feed = validate_feed(merged, repository_name=repository_name)
    given_credentials = "credentials" in feed
    credentials = feed.pop("credentials", None)
    feed["credentials"] = (_credentials_summary(credentials) if given_credentials
                           else (stored or {}).get("credentials"))
    reschedule = stored is None or "sync_interval" in delta
    next_sync = now + timedelta(seconds=feed["sync_interval"]) if feed["sync_interval"] else None
    return FeedChange(feed, reschedule, next_sync, given_credentials, credentials)


def store_credentials(db: Collections, repo_id: str, change: FeedChange) -> None:
    """Write (or remove) the credentials of ``change`` for ``repo_id``, after its feed was written."""
    if not change.set_credentials:
        return
    if change.credentials is None:
        forget_credentials(db, repo_id)
        return
    document = {key: change.credentials.get(key) for key in CREDENTIAL_KEYS}
    db.feed_credentials.replace_one({"_id": repo_id}, document, upsert=True)


def forget_credentials(db: Collections, repo_id: str) -> None:
    db.feed_credentials.delete_one({"_id": repo_id})


def set_feed(db: Collections, repo_id: str, feed_body: Mapping[str, Any] | None, *,
             user: str | None = None) -> dict[str, Any]:
    """Set (merge into the stored feed) or, with ``None``, remove the feed of ``repo_id``; return the repository.

    The same as an update whose delta is ``{"feed": feed_body}``.
    """
    from pulp_registry import repositories

    try:
        repo, _ = repositories.update_repository(db, repo_id, {"feed": feed_body}, user=user)
    except repositories.RepositoryError as exc:
        if exc.field and exc.field.startswith("delta.feed"):
            raise FeedError(exc.field[len("delta."):], exc.message) from None
        raise
    return repo


# --- reading ----------------------------------------------------------------------


def feed_from_document(repo: Mapping[str, Any], credentials: Mapping[str, Any] | None = None) -> Feed | None:
    """The ``Feed`` of a repository document (secrets from ``credentials``, when given)."""
    stored = repo.get("feed")
    if not stored:
        return None
    summary = stored.get("credentials") or {}
    credentials = credentials or {}
    return Feed(
        url=stored["url"], upstream_name=stored["upstream_name"],
        include_tags=tuple(stored.get("include_tags") or ()), exclude_tags=tuple(stored.get("exclude_tags") or ()),
        tag_match=stored.get("tag_match") or "glob", tags=tuple(stored.get("tags") or ()),
        digests=tuple(stored.get("digests") or ()), platforms=tuple(stored.get("platforms") or ()),
        mode=stored.get("mode") or "additive", tls_verify=bool(stored.get("tls_verify", True)),
        ca_bundle=stored.get("ca_bundle"), max_downloads=int(stored.get("max_downloads") or 4),
        requests_per_second=float(stored.get("requests_per_second") or 0),
        sync_interval=int(stored.get("sync_interval") or 0), next_sync=as_utc(repo.get("next_sync")),
        referrers=bool(stored.get("referrers", True)), publish=bool(stored.get("publish", True)),
        username=credentials.get("username") or summary.get("username"),
        password=credentials.get("password"), token=credentials.get("token"),
        secret_set=bool(summary.get("secret_set")), repo_id=repo.get("_id"))


def get_feed(db: Collections, repo_id: str) -> Feed | None:
    """The feed of ``repo_id`` with its secrets, or None (no such repository, or no feed)."""
    repo = db.repositories.find_one({"_id": repo_id})
    if repo is None or not repo.get("feed"):
        return None
    credentials = None
    if (repo["feed"].get("credentials") or {}).get("secret_set"):
        credentials = db.feed_credentials.find_one({"_id": repo_id})
    return feed_from_document(repo, credentials)


def feed_json(feed: Feed | None) -> dict[str, Any] | None:
    """The API's view of a feed: every setting, and ``credentials`` as ``{username, secret_set}`` only."""
    if feed is None:
        return None
    credentials = None
    if feed.username or feed.secret_set or feed.password or feed.token:
        credentials = {"username": feed.username, "secret_set": bool(feed.secret_set or feed.password or feed.token)}
    return {
        "url": feed.url, "upstream_name": feed.upstream_name,
        "include_tags": list(feed.include_tags), "exclude_tags": list(feed.exclude_tags),
        "tag_match": feed.tag_match, "tags": list(feed.tags), "digests": list(feed.digests),
        "platforms": list(feed.platforms), "mode": feed.mode, "tls_verify": feed.tls_verify,
        "ca_bundle": feed.ca_bundle, "max_downloads": feed.max_downloads,
        "requests_per_second": feed.requests_per_second, "sync_interval": feed.sync_interval,
        "referrers": feed.referrers, "publish": feed.publish, "credentials": credentials,
    }


# --- filters ----------------------------------------------------------------------


def _matches(feed: Feed, pattern: str, tag: str) -> bool:
    if feed.tag_match == "regex":
        return compiled_pattern(pattern).fullmatch(tag) is not None
    return fnmatch.fnmatchcase(tag, pattern)


def matches_tag(feed: Feed, tag: str) -> bool:
    """Whether ``tag`` is synced: in the explicit list, or matched by an include pattern (all without
    any) and by no exclude pattern. Globs and regular expressions match the whole tag."""
    if feed.explicit:
        return tag in feed.tags
    if feed.include_tags and not any(_matches(feed, pattern, tag) for pattern in feed.include_tags):
        return False
    return not any(_matches(feed, pattern, tag) for pattern in feed.exclude_tags)


def _platform_parts(os_name: Any, architecture: Any, variant: Any) -> tuple[str, str, str]:
    architecture = str(architecture or "").lower()
    return (str(os_name or "").lower(), architecture,
            str(variant or DEFAULT_VARIANTS.get(architecture, "")).lower())


def wants_platform(feed: Feed, platform: Mapping[str, Any] | None) -> bool:
    """Whether a child of a manifest list with ``platform`` (``{"os", "architecture", "variant"}``) is synced.

    No platforms in the feed: all of them. A feed platform without a variant matches every variant.
    """
    if not feed.platforms:
        return True
    if not isinstance(platform, Mapping):
        return False
    child = _platform_parts(platform.get("os"), platform.get("architecture"), platform.get("variant"))
    for wanted in feed.platforms:
        parts = wanted.split("/")
        os_name, architecture = parts[0], parts[1]
        if (os_name, architecture) != child[:2]:
            continue
        if len(parts) == 2 or _platform_parts(os_name, architecture, parts[2])[2] == child[2]:
            return True
    return False


# --- schedule ---------------------------------------------------------------------


def claim_due(db: Collections, now: datetime) -> list[str]:
    """Ids of the repositories whose scheduled sync is due at ``now``, each claimed for the caller.

    A claim is one conditional write moving ``next_sync`` to ``now + sync_interval``: of two
    schedulers looking at once, one claims a repository, the other's condition fails.
    """
    claimed = []
    due = db.repositories.find({"next_sync": {"$lte": now}, "feed.sync_interval": {"$gt": 0}, "deleting": None},
                               {"_id": 1, "feed.sync_interval": 1})
    for repo in list(due):
        interval = int(repo["feed"]["sync_interval"])
        with PROCESS_GUARD:
            won = db.repositories.find_one_and_update(
                {"_id": repo["_id"], "next_sync": {"$lte": now}, "feed.sync_interval": interval, "deleting": None},
                {"$set": {"next_sync": now + timedelta(seconds=interval)}},
                projection={"_id": 1}, return_document=ReturnDocument.AFTER)
        if won is not None:
            claimed.append(repo["_id"])
    return claimed
