"""The one reader of the published tree (docs/published-format.md).

A Crane worker holds only the repositories it is asked for: ``repository(name)``
loads one on a miss (``versions/<v>/repository.json`` of the version the
journal last named for it, else of the version its ``current`` link names)
into a ``RepositoryCache`` bounded in MiB, least recently used dropped first.
A manifest request by tag reads only that tag's document if the repository is
not cached, and caches it as that tag's entry when asked for again
(``repository_for_tag``).
Nothing is scanned at start-up: opening the tree reads ``FORMAT`` and positions
a ``JournalReader`` at the end of the journal, both O(1).

At most once per ``poll_interval`` a request polls the journal: each change
evicts that repository (the next request loads the version the journal named)
and a change of the catalog files drops the catalog indexes. If the reader lost
track (a segment deleted, a new tree), everything cached is forgotten. Each
poll also re-reads the ``current`` link of a few cached repositories, round
robin (``SAFETY_NET_LINKS``): the safety net for a publisher killed between its
switch of ``current`` and its journal append.

A lookup that misses (unknown name, tag, manifest or blob) polls the journal at
once and re-reads that repository's ``current`` link before a 404 is answered
(``refresh_on_miss``), since another worker may already serve a newer version.
A repository object never changes: a request that took one keeps that version
to the end while other threads load newer ones.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from orjson import loads   # a cache miss parses one repository.json: several times faster than json's

from pulp_registry import oci
from pulp_registry import published_format as fmt
from pulp_registry.published_catalog import CatalogIndex
from pulp_registry.published_journal import JournalReader
from pulp_registry.published_tags import tag_path

from crane.published_repository import (ManifestInfo, PublishedRepository, Referrer, parse_repository,
                                        referrer_of)
from crane.repository_cache import REMOVED, RepositoryCache, key_name, tag_key
from crane.small_files import read_file

__all__ = ["ContentMissing", "ManifestCache", "ManifestInfo", "PublishedFormatError", "PublishedRepository",
           "PublishedTree", "Referrer", "parse_repository", "read_format", "referrer_of"]

log = logging.getLogger("crane.published")


#: Cached repositories whose ``current`` link each poll re-reads (see module doc).
SAFETY_NET_LINKS = 32
UPGRADE_HINT = "run `pulp-registry republish --all` on the admin side to upgrade it"


class PublishedFormatError(RuntimeError):
    """The tree is written in a format this Crane cannot read; start-up stops."""


class ContentMissing(LookupError):
    """Listed content whose bytes are not (or no longer correctly) in ``blobs/``."""


def read_format(root: Path) -> bool:
    """True if the tree is there in a format we read, False if absent; raise if it is another format."""
    try:
        text = (root / fmt.FORMAT_FILE).read_text()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot read %s: %s", root / fmt.FORMAT_FILE, exc)
        return False
    if text.strip() != fmt.FORMAT_TEXT.strip():
        raise PublishedFormatError(format_problem(root, text))
    return True


def format_problem(root: Path, text: str) -> str:
    """One line saying why a ``FORMAT`` file of another format is refused, and what to do."""
    found = text.strip()
    if found.startswith("pulp-registry-published ") and found.rsplit(" ", 1)[1].isdigit() \
            and int(found.rsplit(" ", 1)[1]) < fmt.FORMAT_VERSION:
        return (f"{root / fmt.FORMAT_FILE} says {found!r}: this Crane reads only {fmt.FORMAT_TEXT.strip()!r}; "
                f"{UPGRADE_HINT}")
    return (f"{root / fmt.FORMAT_FILE} says {found!r}; this Crane reads only {fmt.FORMAT_TEXT.strip()!r}. "
            "Upgrade Crane or point data_dir at a tree it can read.")


def _version_of_link(target: str) -> str | None:
    """``versions/<v>`` -> ``<v>``; None for anything else (a link must not lead outside ``versions/``)."""
    prefix, _, version = target.partition("/")
    if prefix != fmt.VERSIONS_DIR or not _is_version_name(version):
        return None
    return version


def _is_version_name(version: Any) -> bool:   # also given what a document says: any JSON value
    return (type(version) is str and bool(version) and "/" not in version and not version.startswith(".")
            and "\0" not in version)


class ManifestCache:
    """Manifest bytes by digest, least recently used dropped first, bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, digest: str) -> bytes | None:
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if digest in self._items:
                return
            self._items[digest] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)


class PublishedTree:
    """The published tree as Crane sees it; one per process, shared by all threads."""

    def __init__(self, root: str | os.PathLike[str], poll_interval: float = 1.0,
                 manifest_cache_size: int = 64 * 1024 * 1024, repository_cache_mib: float = 32,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(root)
        # Paths are built as strings on the load path: pathlib's joins cost more than the read they lead to.
        self._repositories_dir = os.path.join(self.root, fmt.REPOSITORIES_DIR)
        self._blobs_dir = os.path.join(self.root, fmt.BLOBS_DIR)
        self.poll_interval = poll_interval
        self._clock = clock
        self._manifests = ManifestCache(manifest_cache_size)
        self.repositories = RepositoryCache(int(repository_cache_mib * 1024 * 1024))
        self._poll_lock = threading.Lock()
        self._journal = JournalReader(self.root)
        self._catalogs: dict[str, CatalogIndex] = {}
        self._next_check = 0.0
        self._round_robin = 0
        #: Changes applied from the journal (Crane's reload metric).
        self.reloads = 0
        #: The newest version seen (loaded or named by the journal): the metadata-age metric.
        self.newest_version: str | None = None
        self._format_ok = read_format(self.root)   # raises on another format: refuse to start
        if self._format_ok:
            self._journal.start()   # at the end, nothing replayed; without a journal yet, its first poll starts it
        else:
            log.warning("no published tree at %s (no %s file): serving no repositories until one is published",
                        self.root, fmt.FORMAT_FILE)
        self._next_check = self._clock() + self.poll_interval

    # --- what requests use ------------------------------------------------------

    def repository(self, name: str) -> PublishedRepository | None:
        """The version served under ``name``, loaded if not cached; None if not published."""
        repository = self.repositories.get(name)
        if repository is None:
            repository = self._load(name)
        return repository

    def repository_for_tag(self, name: str, tag: str) -> PublishedRepository | None:
        """What a manifest request by ``tag`` is answered from: the cached repository, else the tag's own
        document (``pulp_registry.published_tags``), cached as that tag's entry once asked for again.

        A random spread of pulls over a large tree thus costs one short read per
        first request, and each hot tag a few KiB of cache, instead of a whole
        ``repository.json`` parsed and cached for one tag. A tag asked for once
        caches nothing (``RepositoryCache.first_sight``), so a scan evicts no hot
        entry. A version without tag documents, or a tag it does not have, is loaded whole.
        """
        cache = self.repositories
        repository = cache.get(name)
        if repository is not None or not self._format_ok:
            return repository
        key = tag_key(name, tag)
        entry = cache.get(key)
        if entry is not None:
            return entry
        with cache.lock:
            epoch, recent = cache.epoch, cache.recent.get(name)
        entry = self._read_tag(name, tag, recent)
        if entry is None:
            return self._load(name)
        if not cache.first_sight(key):
            with cache.lock:
                if cache.epoch == epoch and cache.recent.get(name) == recent:   # no change came meanwhile
                    return cache.insert(entry, key)
        return entry

    def refresh_if_due(self) -> None:
        """Called by every request: a clock read unless ``poll_interval`` has passed."""
        if self._clock() >= self._next_check:
            self.refresh()

    def refresh_on_miss(self, name: str | None = None) -> None:
        """A lookup missed: catch up with the latest publish now, whatever the poll interval says.

        Another worker (or Crane instance) may already serve a newer version, and
        a client's next request -- the blob of a manifest it just got, a tag it
        just listed -- can land here. So a miss polls the journal (waiting for a
        poll another thread started) and re-reads ``name``'s ``current`` link
        before it is answered with a 404. Hits never pay for this.
        """
        with self._poll_lock:
            self._poll_journal()
        if name is not None:
            self._recheck_link(name)

    def manifest_bytes(self, manifest: ManifestInfo) -> bytes:
        """The exact stored bytes of a manifest, verified once when first read."""
        data = self._manifests.get(manifest.digest)
        if data is None:
            algorithm, hexdigest = manifest.digest.split(":", 1)   # ManifestInfo digests are validated
            data = manifest.content
            if data is None or oci.compute_digest(data, algorithm) != manifest.digest:
                if data is not None:
                    log.error("manifest %s: the content repository.json carries does not match its digest; "
                              "reading blobs/", manifest.digest)
                data = self._read_manifest_file(manifest.digest, algorithm, hexdigest)
            self._manifests.put(manifest.digest, data)
        return data

    def _read_manifest_file(self, digest: str, algorithm: str, hexdigest: str) -> bytes:
        path = f"{self._blobs_dir}/{algorithm}/{hexdigest}"
        try:
            data = read_file(path)
        except OSError as exc:
            log.error("manifest %s is listed but cannot be read: %s", digest, exc)
            raise ContentMissing(digest) from None
        if oci.compute_digest(data, algorithm) != digest:
            log.error("manifest %s: bytes in %s do not match their digest", digest, path)
            raise ContentMissing(digest)
        return data

    def blob_file(self, digest: str) -> Path:
        """Path of a blob's bytes; ``digest`` must have been validated."""
        return fmt.blob_path(self.root, digest)

    def catalog(self, which: str) -> CatalogIndex:
        """The sorted names of ``catalog/<which>`` (``fmt.CATALOG_ALL`` or ``fmt.CATALOG_PUBLIC``).

        Opened when first asked for and dropped when the journal says the files
        changed. A dropped index is not closed here: a request in another thread
        may still be paging through it; its mapping goes with the last reference.
        """
        index = self._catalogs.get(which)
        if index is None:
            index = CatalogIndex(self.root / fmt.CATALOG_DIR / which)
            self._catalogs[which] = index
        return index

    # --- following the journal ------------------------------------------------------

    def refresh(self) -> None:
        """Poll the journal (and re-check a few links); threads that find a poll under way go on."""
        if not self._poll_lock.acquire(blocking=False):
            return
        try:
            self._next_check = self._clock() + self.poll_interval
            if self._poll_journal():
                self._check_some_links()
        finally:
            self._poll_lock.release()

    def _poll_journal(self) -> bool:
        """Apply the journal's new changes (caller holds ``_poll_lock``); False if there is no tree to follow."""
        if not self._format_ok:
            try:
                self._format_ok = read_format(self.root)
            except PublishedFormatError as exc:
                log.error("%s", exc)
                return False
            if not self._format_ok:
                return False
        changes = self._journal.poll()
        if changes is None:   # lost track (or the journal appeared): the reader is at its end now
            log.warning("%s: lost track of the journal: forgetting every cached repository",
                        self.root / fmt.JOURNAL_DIR)
            self._forget_all()
            return True
        if not changes:
            return True
        cache = self.repositories
        with cache.lock:
            for change in changes:
                version = change.version
                if version is not None and not _is_version_name(version):
                    log.error("journal names version %r of %r, which is not a version name: ignored",
                              version, change.name)
                    cache.evict(change.name)   # loads read ``current``
                    cache.recent.pop(change.name, None)
                    continue
                cache.note_version(change.name, REMOVED if version is None else version)
                if version is not None and (self.newest_version is None or version > self.newest_version):
                    self.newest_version = version
        if any(change.catalog for change in changes):
            self._catalogs = {}
        self.reloads += len(changes)
        return True

    def _forget_all(self) -> None:
        with self.repositories.lock:
            self.repositories.clear()
        self._catalogs = {}

    def _check_some_links(self) -> None:
        """Re-read the ``current`` link of a few cached repositories, round robin.

        The journal is how changes are seen; this is only the safety net for a
        publisher killed after it switched ``current`` but before it appended to
        the journal. ``SAFETY_NET_LINKS`` per poll keeps the cost fixed whatever
        the cache holds.
        """
        keys = list(self.repositories.items)   # one C-level copy under the GIL
        if not keys:
            return
        start = self._round_robin % len(keys)
        self._round_robin = start + SAFETY_NET_LINKS
        for key in keys[start:start + SAFETY_NET_LINKS]:
            self._recheck_link(key_name(key), key)

    def _recheck_link(self, name: str, key: str | None = None) -> None:
        """Evict ``name`` if its ``current`` link names a newer version than the one served (under ``key``).

        An older one is a stale view (NFS attribute caching) of a switch the
        journal already told us of: version names sort by publish time.
        """
        key = key or name
        served = self.repositories.items.get(key)
        if served is None:
            return
        linked = self._read_link(name)
        if linked is None:
            with self.repositories.lock:
                if self.repositories.recent.get(name) is None:
                    self.repositories.evict(name, keep_stale=False)   # removed: the journal line will follow
            return
        if linked <= served.version or self.repositories.unreadable.get(name) == linked:
            return
        with self.repositories.lock:
            if self.repositories.items.get(key) is served:
                self.repositories.note_version(name, linked)

    # --- loading ----------------------------------------------------------------

    def _repository_dir(self, name: str) -> str:
        """``fmt.repository_dir`` as a string, for a validated name: ``quote(name, safe="")`` changes only
        its ``/`` (names are ``[a-z0-9]`` components joined by ``.``, ``_``, ``__``, ``-`` and ``/``)."""
        return f"{self._repositories_dir}/{name.replace('/', '%2F')}"

    def _version_dir(self, name: str, version: str | None) -> str:
        """``versions/<version>`` of a validated name; for None, ``current`` (the link to the live version)."""
        where = fmt.CURRENT_LINK if version is None else f"{fmt.VERSIONS_DIR}/{version}"
        return f"{self._repository_dir(name)}/{where}"

    def _read_link(self, name: str) -> str | None:
        """The version ``current`` names, for a validated name; None if there is none (or it is not a version)."""
        try:
            target = os.readlink(self._version_dir(name, None))
        except OSError:
            return None
        version = _version_of_link(target)
        if version is None:
            log.error("%s: current points at %r, outside versions/; not served", self._repository_dir(name), target)
        return version

    def _load(self, name: str) -> PublishedRepository | None:
        """Load ``name`` into the cache; a change for it during the load makes it start once more."""
        if not self._format_ok:
            return None
        try:
            oci.validate_name(name)   # the fast path looks names up before it validates them
        except Exception:   # noqa: BLE001 - an invalid name is simply not published
            return None
        cache = self.repositories
        repository: PublishedRepository | None = None
        for _ in range(2):
            with cache.lock:
                epoch, recent = cache.epoch, cache.recent.get(name)
            if recent == REMOVED:
                return None
            if recent:
                version: str | None = recent
                repository, missing = self._read_version(name, recent)
            else:
                version, repository, missing = self._read_current(name)
            if version is None:
                return None
            if missing:   # superseded and deleted while we read: catch up with the publish that did it
                with self._poll_lock:
                    self._poll_journal()
                continue
            with cache.lock:
                if cache.epoch != epoch or cache.recent.get(name) != recent:
                    continue   # a change (or a reset) came while reading: read what it names
                if repository is not None:
                    if self.newest_version is None or version > self.newest_version:
                        self.newest_version = version
                    return cache.insert(repository)
                previous = cache.take_stale(name)
                if previous is None:
                    return None
                cache.unreadable[name] = version   # keep serving the last good version; the next publish is tried
                return cache.insert(previous)
        return repository   # changed twice while loading: serve what was read, without keeping it

    def _read_tag(self, name: str, tag: str, recent: str | None) -> PublishedRepository | None:
        """The document of ``tag`` in the version ``_load`` would read (``recent``: what the journal last named),
        parsed; None if it cannot be used."""
        try:
            oci.validate_name(name)
            oci.validate_tag(tag)
        except Exception:   # noqa: BLE001 - the full load decides what to answer
            return None
        if recent == REMOVED:
            return None
        path = tag_path(self._version_dir(name, recent), tag)
        try:
            data = read_file(path)
            document = loads(data)
            version = document.get("version")
        except Exception:   # noqa: BLE001 - no tag documents (an older publish), no such tag: load it whole
            return None
        if not _is_version_name(version) or (recent and version != recent):
            return None
        return self._parse(name, path, document, len(data), version)

    def _read_current(self, name: str) -> tuple[str | None, PublishedRepository | None, bool]:
        """What ``current`` serves, read in one open through the link: ``(version, repository, missing)``.

        The document names its own version (publishes write ``version``), so the
        link need not be read first; a document without one, or one that cannot
        be read, is looked up by the link as before.
        """
        path = f"{self._version_dir(name, None)}/{fmt.REPOSITORY_JSON}"
        try:
            data = read_file(path)
            document = loads(data)
            version = document.get("version")
        except Exception:   # noqa: BLE001 - not published, or unreadable: the link decides below
            version = None
        if not _is_version_name(version):
            version = self._read_link(name)
            if version is None:
                return None, None, False
            return (version, *self._read_version(name, version))
        return version, self._parse(name, path, document, len(data), version), False

    def _read_version(self, name: str, version: str) -> tuple[PublishedRepository | None, bool]:
        """``versions/<version>`` of ``name`` parsed; None (logged) if it cannot be; and whether it was missing."""
        path = f"{self._version_dir(name, version)}/{fmt.REPOSITORY_JSON}"
        try:
            data = read_file(path)
            document = loads(data)
        except FileNotFoundError:
            log.info("%s: version %s vanished while loading (a newer publish replaced it)", name, version)
            return None, True
        except Exception as exc:   # noqa: BLE001 - a bad file must not take Crane down
            log.error("%s: cannot load version %s: %s", self._repository_dir(name), version, exc)
            return None, False
        return self._parse(name, path, document, len(data), version), False

    def _parse(self, name: str, path: str, document: Any, size: int, version: str) -> PublishedRepository | None:
        try:
            repository = parse_repository(document, version, size)
        except Exception as exc:   # noqa: BLE001 - a bad file must not take Crane down
            log.error("%s: cannot load version %s: %s", self._repository_dir(name), version, exc)
            return None
        if repository.name != name:
            log.error("%s: repository.json names %r, which belongs in another directory; not served",
                      path, repository.name)
            return None
        return repository
