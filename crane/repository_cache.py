"""The repositories a Crane worker holds: the hot ones, bounded in bytes, and what the journal said of the rest.

``RepositoryCache`` keeps loaded ``PublishedRepository``s by name, and hot
tags of repositories not loaded whole by ``tag_key(name, tag)`` (the one-tag
repository read from that tag's document), least recently used dropped first
once their estimated memory passes the budget (``repository_cache_mib``); a
change of a repository evicts its tags' entries with it. A hit is
``OrderedDict.get`` and ``move_to_end``: two C calls that the GIL makes atomic
(str keys run no Python code), so hits take no lock; a ``move_to_end`` racing
with an eviction finds the key gone and is skipped. Every change of the
structure (insert, evict, clear) and of the byte count is made under ``lock``.

Beside it, ``recent``: the version the journal last named for each changed
repository (or ``REMOVED``), FIFO-bounded. A load opens the version named there
directly instead of reading ``current``: on NFS a symlink can look stale for the
attribute-cache time, a brand-new version directory cannot. ``epoch`` moves
when everything is forgotten, so a load that raced with a change or a reset
can tell (``PublishedTree`` checks both before it inserts).

``stale`` keeps, for a while, versions a change evicted (within the same byte
budget, dropped first): if the new version cannot be read, the last good one is
served again, as before the cache existed.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from crane.published_repository import PublishedRepository

#: ``recent`` value of a repository the journal says was removed.
REMOVED: Final = "\0removed"
#: Names whose latest journal version is remembered (FIFO); about 100 bytes each.
RECENT_LIMIT = 50_000
#: Slots of the doorkeeper (``first_sight``), a byte each, and the marks after which it starts afresh: about
#: one key in eight then finds its slot taken by another, which only caches that key on its first sight.
DOOR_SLOTS = 1 << 20
DOOR_MARKS = DOOR_SLOTS // 8


def tag_key(name: str, tag: str) -> str:
    """The cache key of one tag's entry: never a name, since names and tags have no ``:``."""
    return f"{name}:{tag}"


def key_name(key: str) -> str:
    """The repository a cache key belongs to: the key itself, or the name in a ``tag_key``."""
    return key.partition(":")[0]


class RepositoryCache:
    """Loaded repositories by name, LRU, bounded by estimated bytes; see the module doc for the locking rule."""

    def __init__(self, max_bytes: int, recent_limit: int = RECENT_LIMIT) -> None:
        self.max_bytes = max_bytes
        self.recent_limit = recent_limit
        #: Hits read this without the lock (see module doc); only ``lock`` holders change it.
        self.items: OrderedDict[str, PublishedRepository] = OrderedDict()
        self.stale: OrderedDict[str, PublishedRepository] = OrderedDict()
        self.recent: OrderedDict[str, str] = OrderedDict()
        #: Name -> a version that could not be read while an older one is served instead.
        self.unreadable: dict[str, str] = {}
        #: Name -> the keys of its tags' entries in ``items``.
        self.tagged: dict[str, set[str]] = {}
        #: Keys missed once lately, by the slot of their hash (see ``first_sight``); changed without the lock.
        self.door = bytearray(DOOR_SLOTS)
        self.door_marks = 0
        self.bytes = 0
        self.epoch = 0
        self.lock = threading.Lock()

    def __len__(self) -> int:
        """Repositories held whole (``tag_entries`` counts the rest of ``items``)."""
        return len(self.items) - self.tag_entries

    @property
    def tag_entries(self) -> int:
        """Tags' entries held, counted when asked (by metrics and tests): no counter to keep in step."""
        return sum(map(len, list(self.tagged.values())))

    def get(self, name: str) -> PublishedRepository | None:
        """The cached repository (marked as just used), or None; no lock (see module doc)."""
        repository = self.items.get(name)
        if repository is not None:
            try:
                self.items.move_to_end(name)
            except KeyError:   # evicted by another thread in between: still fine to serve this once
                pass
        return repository

    def first_sight(self, key: str) -> bool:
        """True if ``key`` was not missed lately, and remember it: only a second miss caches anything.

        Caching on the second request (a "doorkeeper", as in TinyLFU) keeps a
        scan of cold keys from pushing the hot ones out. A byte per slot of the
        key's hash, cleared after ``DOOR_MARKS`` marks, remembers more than a
        hundred thousand keys in 1 MiB; each step is one C operation the GIL
        makes atomic, so no lock: two threads may both see a first sight.
        """
        door = self.door
        slot = hash(key) & (DOOR_SLOTS - 1)
        if door[slot]:
            return False
        door[slot] = 1
        self.door_marks += 1
        if self.door_marks >= DOOR_MARKS:
            self.door, self.door_marks = bytearray(DOOR_SLOTS), 0
        return True

    # --- the rest: callers hold ``lock`` ---------------------------------------------

    def insert(self, repository: PublishedRepository, key: str | None = None) -> PublishedRepository:
        """Cache ``repository`` under its name, or a tag's entry under ``key``, and trim to the budget;
        return what is cached (another thread may have cached it meanwhile)."""
        name = repository.name
        key = key or name
        if repository.memory > self.max_bytes:
            return repository   # larger than the whole budget: served, never kept
        present = self.items.get(key)
        if present is not None and present.version >= repository.version:
            return present   # another thread loaded it meanwhile (or a newer one: version names sort by time)
        if present is not None:
            self._drop(key)
        if key == name:
            dropped = self.stale.pop(name, None)
            if dropped is not None:
                self.bytes -= dropped.memory
        else:
            self.tagged.setdefault(name, set()).add(key)
        self.items[key] = repository
        self.bytes += repository.memory
        self._trim()
        return repository

    def evict(self, name: str, keep_stale: bool = True) -> None:
        """Forget ``name`` and its tags' entries; with ``keep_stale`` its version stays as the fallback for a
        failed load."""
        for key in self.tagged.pop(name, ()):
            entry = self.items.pop(key, None)
            if entry is not None:
                self.bytes -= entry.memory
        repository = self.items.pop(name, None)
        self.unreadable.pop(name, None)
        if repository is None:
            return
        if keep_stale and name not in self.stale:
            self.stale[name] = repository
            self._trim()
        else:
            self.bytes -= repository.memory

    def take_stale(self, name: str) -> PublishedRepository | None:
        """The last good version of ``name`` evicted by a change, taken out of ``stale``."""
        repository = self.stale.pop(name, None)
        if repository is not None:
            self.bytes -= repository.memory
        return repository

    def note_version(self, name: str, version: str) -> None:
        """The journal (or a ``current`` link newer than it) names ``version`` for ``name``: evict, remember."""
        self.evict(name)
        recent = self.recent
        recent.pop(name, None)
        recent[name] = version
        while len(recent) > self.recent_limit:
            recent.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (the journal lost track): loads read ``current`` again."""
        self.items.clear()
        self.stale.clear()
        self.recent.clear()
        self.unreadable.clear()
        self.tagged.clear()
        self.bytes = 0
        self.epoch += 1

    def _drop(self, key: str) -> None:
        self._forget(key, self.items.pop(key))

    def _forget(self, key: str, repository: PublishedRepository) -> None:
        """Account for ``repository``, just taken out of ``items`` from under ``key``."""
        self.bytes -= repository.memory
        name = repository.name
        if key == name:
            self.unreadable.pop(name, None)
            return
        keys = self.tagged.get(name)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.tagged[name]

    def _trim(self) -> None:
        """Drop stale versions first, then the least recently used, until the budget holds."""
        while self.bytes > self.max_bytes and self.stale:
            _, repository = self.stale.popitem(last=False)
            self.bytes -= repository.memory
        while self.bytes > self.max_bytes and self.items:
            self._forget(*self.items.popitem(last=False))
