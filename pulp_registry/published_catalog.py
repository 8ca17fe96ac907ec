"""The sorted names of the published repositories: ``catalog/all`` and ``catalog/public``.

``/v2/_catalog`` pages through every repository name, and Crane must answer it
without loading every repository. The publisher keeps two sorted files, one
name per line (string order is UTF-8 byte order, so a byte comparison sorts as
Python does); a reader maps a file and finds a page by binary search, so a page
costs O(log n) and no memory grows with the tree. Writers hold
``published_journal.journal_lock``; each file is replaced in one rename, and
the journal line written with the change tells readers to reopen it.
Standard library only: Crane imports it.
"""
from __future__ import annotations

import mmap
import os
from bisect import bisect_left
from pathlib import Path
from typing import Iterable

from pulp_registry.durable import make_dirs, write_atomic
from pulp_registry.published_format import CATALOG_ALL, CATALOG_DIR, CATALOG_PUBLIC


def catalog_path(root: Path, which: str) -> Path:
    """``which`` is ``CATALOG_ALL`` or ``CATALOG_PUBLIC``."""
    return Path(root) / CATALOG_DIR / which


def _read_names(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode().splitlines()
    except FileNotFoundError:
        return []


def _write_names(path: Path, names: list[str]) -> None:
    make_dirs(path.parent)
    write_atomic(path, "".join(name + "\n" for name in names).encode())


def _set_member(path: Path, name: str, member: bool) -> bool:
    """Add or remove ``name`` in one file; True if the file changed."""
    index = CatalogIndex(path)
    try:
        if (name in index) == member:
            return False
    finally:
        index.close()
    names = _read_names(path)
    position = bisect_left(names, name)
    present = position < len(names) and names[position] == name
    if member and not present:
        names.insert(position, name)
    elif not member and present:
        del names[position]
    _write_names(path, names)
    return True


def update_catalog(root: Path, name: str, present: bool, public: bool) -> bool:
    """Make the files say whether ``name`` is published and public; True if either changed.

    The caller holds ``journal_lock``. Only a new, removed or re-protected name
    rewrites a file; a publish of a known repository costs two binary searches.
    """
    changed = _set_member(catalog_path(root, CATALOG_ALL), name, present)
    return _set_member(catalog_path(root, CATALOG_PUBLIC), name, present and public) or changed


def rebuild_catalog(root: Path, names: Iterable[tuple[str, bool]]) -> None:
    """Write both files from ``(name, public)`` pairs (a new or upgraded tree); the caller holds the lock."""
    pairs = sorted(set(names))
    _write_names(catalog_path(root, CATALOG_ALL), sorted({name for name, _ in pairs}))
    _write_names(catalog_path(root, CATALOG_PUBLIC), sorted({name for name, public in pairs if public}))


class CatalogIndex:
    """One catalog file, mapped read-only; a missing or empty file is an empty list.

    The mapping keeps the file it opened even after the publisher replaced it,
    so a page is always read from one version; make a new index to see a new one.
    """

    def __init__(self, path: Path) -> None:
        self._map: mmap.mmap | None = None
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size:
                    self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def _first_after(self, data: mmap.mmap, key: bytes, inclusive: bool) -> int:
        """Offset of the first line greater than ``key`` (or equal, when ``inclusive``)."""
        low, high = 0, len(data)   # both are line starts (or the end)
        while low < high:
            middle = (low + high) // 2
            newline = data.rfind(b"\n", low, middle)
            start = newline + 1 if newline >= 0 else low
            end = data.find(b"\n", start)
            if end < 0:
                end = len(data)
            line = data[start:end]
            if line < key or (line == key and not inclusive):
                low = end + 1
            else:
                high = start
        return min(low, len(data))

    def __contains__(self, name: str) -> bool:
        data = self._map
        if data is None:
            return False
        key = name.encode()
        start = self._first_after(data, key, inclusive=True)
        end = data.find(b"\n", start)
        return data[start:end if end >= 0 else len(data)] == key

    def page(self, last: str | None, n: int | None) -> tuple[list[str], bool]:
        """Names after ``last`` in order, at most ``n`` of them, and whether more follow
        (the contract of ``crane.listing.paginate``)."""
        data = self._map
        if data is None or n == 0:
            return [], False
        position = self._first_after(data, last.encode(), inclusive=False) if last is not None else 0
        names: list[str] = []
        size = len(data)
        while position < size and (n is None or len(names) < n):
            end = data.find(b"\n", position)
            if end < 0:
                end = size
            names.append(data[position:end].decode())
            position = end + 1
        return names, n is not None and position < size
