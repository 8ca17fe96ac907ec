"""The one owner of MongoDB access: the connection, the collections and their indexes.

Runs on pymongo against MongoDB and on mongomock (``mongomock://``) in tests and
in ``dev``. Only single-document atomic writes are used (no transactions), and
no document holds a list that grows with a repository: tags, manifests and
blob associations are documents of their own.

Collections (``_id`` first):

- ``repositories``: ``_id`` repo id, ``name`` registry name (unique),
  ``description``, ``notes`` (list of ``[key, value]`` pairs: user keys never
  become field names), ``protected``, ``created``, ``updated``,
  ``last_published``; ``feed`` (upstream settings, ``feeds.py``) and ``next_sync`` (scheduler).
- ``feed_credentials``: ``_id`` repo id, ``username``, ``password``, ``token`` of its feed: never shown.
- ``blobs`` / ``manifests``: content units keyed by digest; a manifest keeps its
  media type, size, config/layer digests, child manifests (each child's platform as
  a raw JSON string, ``platform_json``), subject and artifact type (annotations as a
  raw JSON string).
- ``repo_blobs`` / ``repo_manifests``: associations ``(repo_id, digest)``, unique.
- ``tags``: ``(repo_id, name)`` unique, with ``manifest_digest``.
- ``uploads``: blob upload sessions of the push endpoints.
- ``tasks``: task status documents, written only by ``tasks.py``: ``queued`` (the order tasks
  sharing a repository run in), ``lease_expires`` (renewed by the running worker), ``deadline``,
  ``sent`` (when the message last went out), ``user``, ``parent``; ``pending_key`` (unique where
  present) keeps two pending tasks of the same work from both being created.
- ``locks``: one document per locked resource, owned by a task.
- ``users``: ``_id`` login, ``source`` (``local`` or ``ldap``), bcrypt ``password_hash``
  (local users), ``roles`` (given by hand) and ``ldap_roles`` (from the directory at
  the last login): a user holds few roles, and role membership is found by querying.
- ``roles``: ``_id`` role name, ``description``, ``builtin``, ``changing_until`` (a
  short lease serializing removals from ``super-users``).
- ``permissions``: one document per (``subject_type``, ``subject``, ``resource``), with
  the ``operations`` granted there (at most five).
- ``api_tokens``: ``_id`` SHA-256 of a token of ``registry-admin login``, ``login``, ``expires``.
- ``login_failures``: ``_id`` ``login:<name>`` or ``address:<ip>``, failure ``count`` in
  the window that started at ``window_start``.
- ``workers``: ``_id`` worker id (unique per process), ``last_heartbeat``.
- ``repo_history``: one document per event of a repository (``repo_id``, ``time``, ``action``,
  ``user``, ``task_id``, ``details``): the history never grows inside the repository document.
- ``system``: registry-wide switches, one document each (``_id`` ``read_only``: maintenance mode).
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.collection import Collection
from pymongo.database import Database

from pulp_registry.config import Settings

INDEXES: dict[str, list[IndexModel]] = {
    "repositories": [IndexModel([("name", ASCENDING)], unique=True),
                     IndexModel([("next_sync", ASCENDING)], sparse=True)],
    "feed_credentials": [],
    "blobs": [],
    "manifests": [IndexModel([("subject", ASCENDING)]),
                  # Orphan clean-up asks which manifests need a blob or a child manifest.
                  IndexModel([("blob_digests", ASCENDING)]), IndexModel([("children.digest", ASCENDING)])],
    "repo_blobs": [IndexModel([("repo_id", ASCENDING), ("digest", ASCENDING)], unique=True),
                   IndexModel([("digest", ASCENDING)])],
    "repo_manifests": [IndexModel([("repo_id", ASCENDING), ("digest", ASCENDING)], unique=True),
                       IndexModel([("digest", ASCENDING)])],
    "tags": [IndexModel([("repo_id", ASCENDING), ("name", ASCENDING)], unique=True),
             IndexModel([("manifest_digest", ASCENDING)])],
    "uploads": [IndexModel([("repo_id", ASCENDING)])],
    "tasks": [IndexModel([("queued", DESCENDING), ("_id", DESCENDING)]),
              IndexModel([("state", ASCENDING), ("queued", DESCENDING)]),
              IndexModel([("task_type", ASCENDING), ("queued", DESCENDING)]),
              IndexModel([("resources", ASCENDING), ("queued", DESCENDING)]),
              IndexModel([("parent", ASCENDING)], sparse=True),
              IndexModel([("finished", ASCENDING)], sparse=True),
              # One pending task per work (``tasks.submit``): only tasks that may have a twin carry the key.
              IndexModel([("pending_key", ASCENDING)], unique=True, sparse=True)],
    "locks": [IndexModel([("task_id", ASCENDING)])],
    "users": [IndexModel([("roles", ASCENDING)]), IndexModel([("ldap_roles", ASCENDING)])],
    "roles": [],
    "permissions": [IndexModel([("subject_type", ASCENDING), ("subject", ASCENDING), ("resource", ASCENDING)],
                               unique=True),
                    IndexModel([("resource", ASCENDING)])],
    "api_tokens": [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0), IndexModel([("login", ASCENDING)])],
    "login_failures": [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)],
    "workers": [],
    "repo_history": [IndexModel([("repo_id", ASCENDING), ("time", DESCENDING), ("_id", DESCENDING)])],
    "system": [],
}


class Collections:
    """Typed access to every collection; built once per process and passed down."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.repositories: Collection = database["repositories"]
        self.blobs: Collection = database["blobs"]
        self.manifests: Collection = database["manifests"]
        self.repo_blobs: Collection = database["repo_blobs"]
        self.repo_manifests: Collection = database["repo_manifests"]
        self.tags: Collection = database["tags"]
        self.uploads: Collection = database["uploads"]
        self.tasks: Collection = database["tasks"]
        self.locks: Collection = database["locks"]
        self.users: Collection = database["users"]
        self.roles: Collection = database["roles"]
        self.permissions: Collection = database["permissions"]
        self.api_tokens: Collection = database["api_tokens"]
        self.login_failures: Collection = database["login_failures"]
        self.workers: Collection = database["workers"]
        self.repo_history: Collection = database["repo_history"]
        self.feed_credentials: Collection = database["feed_credentials"]
        self.system: Collection = database["system"]

    def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            if indexes:
                self.database[name].create_indexes(indexes)

    def ping(self) -> bool:
        try:
            self.database.command("ping")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False


def connect(settings: Settings, client: Any = None) -> Collections:
    """Connect to ``settings.mongo_url`` (or use ``client``) and ensure the indexes."""
    if client is None:
        if settings.mongo_url.startswith("mongomock://"):
            import mongomock

            client = mongomock.MongoClient()
        else:
            client = pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=5000, tz_aware=True)
    collections = Collections(client[settings.mongo_database])
    collections.ensure_indexes()
    return collections


DuplicateKeyError = pymongo.errors.DuplicateKeyError

#: mongomock runs each write as Python check-then-act steps, so threads of one
#: process could interleave inside an "atomic" operation. Serializing our own
#: conditional writes of tasks and locks within the process closes that gap;
#: across processes the single-document atomics of MongoDB do the work.
PROCESS_GUARD = threading.RLock()


def utcnow() -> datetime:
    """Timestamps are stored as UTC datetimes (MongoDB keeps milliseconds)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime | None) -> datetime | None:
    """mongomock and pymongo without ``tz_aware`` hand back naive UTC datetimes."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC."""
    value = as_utc(value)
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
