"""The repositories a Crane worker holds: the hot ones, bounded in bytes, and what the journal said of the rest.

``RepositoryCache`` keeps loaded ``PublishedRepository``s by name, least
recently used dropped first once their estimated memory passes the budget
(``repository_cache_mib``). A hit is ``OrderedDict.get`` and ``move_to_end``:
two C calls that the GIL makes atomic (str keys run no Python code), so hits
take no lock; a ``move_to_end`` racing with an eviction finds the name gone and
is skipped. Every change of the structure (insert, evict, clear) and of the
byte count is made under ``lock``.

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
#: Names missed once lately (FIFO), whose next miss loads them (``first_sight``); about 100 bytes each.
SEEN_LIMIT = 4096


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
        #: Names missed once lately (see ``first_sight``); changed without the lock, like a hit.
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.bytes = 0
        self.epoch = 0
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.items)

    def get(self, name: str) -> PublishedRepository | None:
        """The cached repository (marked as just used), or None; no lock (see module doc)."""
        repository = self.items.get(name)
        if repository is not None:
            try:
                self.items.move_to_end(name)
            except KeyError:   # evicted by another thread in between: still fine to serve this once
                pass
        return repository

    def first_sight(self, name: str) -> bool:
        """True if ``name`` was not missed lately, and remember it: only a second miss loads a repository.

        Caching on the second request (a "doorkeeper", as in TinyLFU) keeps a
        scan of cold names from pushing the hot repositories out. Each step is
        one C call the GIL makes atomic, so no lock: two threads may both see
        a first sight, which only costs a load.
        """
        seen = self.seen
        if name in seen:
            return False
        seen[name] = None
        if len(seen) > SEEN_LIMIT:
            try:
                seen.popitem(last=False)
            except KeyError:
                pass
        return True

    # --- the rest: callers hold ``lock`` ---------------------------------------------

    def insert(self, repository: PublishedRepository) -> PublishedRepository:
        """Cache ``repository`` (or return the one another thread cached meanwhile) and trim to the budget."""
        name = repository.name
        if repository.memory > self.max_bytes:
            return repository   # larger than the whole budget: served, never kept
        present = self.items.get(name)
        if present is not None and present.version >= repository.version:
            return present   # another thread loaded it meanwhile (or a newer one: version names sort by time)
        if present is not None:
            self._drop(name)
        dropped = self.stale.pop(name, None)
        if dropped is not None:
            self.bytes -= dropped.memory
        self.items[name] = repository
        self.bytes += repository.memory
        self._trim()
        return repository

    def evict(self, name: str, keep_stale: bool = True) -> None:
        """Forget ``name``; with ``keep_stale`` its version stays as the fallback for a failed load."""
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
        self.bytes = 0
        self.epoch += 1

    def _drop(self, name: str) -> None:
        repository = self.items.pop(name)
        self.bytes -= repository.memory

    def _trim(self) -> None:
        """Drop stale versions first, then the least recently used, until the budget holds."""
        while self.bytes > self.max_bytes and self.stale:
            _, repository = self.stale.popitem(last=False)
            self.bytes -= repository.memory
        while self.bytes > self.max_bytes and self.items:
            name, repository = self.items.popitem(last=False)
            self.bytes -= repository.memory
            self.unreadable.pop(name, None)
