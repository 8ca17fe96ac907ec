"""The tree-wide half of a publish or removal (format 2): catalog and journal, under one lock.

A publish switches one repository's ``current`` link (``publish.py``); Crane
learns of it from the journal, and ``_catalog`` reads the sorted names in
``catalog/``. Both are written here, under the writers' lock, so two workers
publishing different repositories append whole lines, once each, and never
lose each other's catalog change. ``upgrade_tree`` makes a format-1 tree (or
a new, empty one) format 2: journal, catalog of what is published, ``FORMAT``
last. See docs/published-format.md.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from pulp_registry import published_format as fmt
from pulp_registry.durable import make_dirs, write_atomic
from pulp_registry.published_catalog import rebuild_catalog, update_catalog
from pulp_registry.published_journal import Change, append_change, init_journal, journal_lock

log = logging.getLogger(__name__)

_FORMAT_PREFIX = "pulp-registry-published "


def tree_format(root: Path) -> int | None:
    """The format ``FORMAT`` names; None when there is none (a new tree), 0 when it is unreadable."""
    try:
        text = (root / fmt.FORMAT_FILE).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    version = text.strip().removeprefix(_FORMAT_PREFIX.strip()).strip()
    return int(version) if text.startswith(_FORMAT_PREFIX) and version.isdigit() else 0


def _write_format(root: Path) -> None:
    """``FORMAT``, written last: it says the rest is in place."""
    write_atomic(root / fmt.FORMAT_FILE, fmt.FORMAT_TEXT.encode())


def published_repositories(root: Path) -> Iterator[tuple[str, bool]]:
    """(name, public) of every repository with a ``current`` version, from its ``repository.json``.

    A repository whose current version cannot be read is left out (Crane cannot serve it either);
    its next publish adds it to the catalog.
    """
    try:
        entries = sorted((root / fmt.REPOSITORIES_DIR).iterdir())
    except FileNotFoundError:
        return
    for repo_dir in entries:
        if fmt.is_temporary_name(repo_dir.name):
            continue
        version = fmt.current_version(repo_dir)
        if version is None:
            continue
        try:
            document = fmt.read_version(repo_dir, version)
            yield str(document["name"]), not bool(document.get("protected", False))
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: current version %s cannot be read (%s): left out of the catalog",
                        repo_dir, version, exc)


def upgrade_tree(root: Path) -> int | None:
    """Make ``root`` a format-2 tree; the number of repositories its new catalog lists (None: it was format 2).

    Under the writers' lock: the journal (a new tree id, so every Crane starts afresh),
    the catalog rebuilt from the ``current`` versions (their ``protected``), ``FORMAT`` last.
    Format 1's ``generation`` stays: a Crane of the old version keeps serving what it loaded.
    """
    make_dirs(root)
    with journal_lock(root):
        if tree_format(root) == fmt.FORMAT_VERSION:
            return None
        init_journal(root)
        names = sorted(published_repositories(root))
        rebuild_catalog(root, names)
        _write_format(root)
    log.info("published tree %s is format %d (%d repositories)", root, fmt.FORMAT_VERSION, len(names))
    return len(names)


def ensure_tree(root: Path) -> None:
    """A new tree (no ``FORMAT``) becomes an empty format-2 tree; an existing one is left as it is."""
    make_dirs(root)
    if tree_format(root) is None:
        upgrade_tree(root)


def record_change(root: Path, name: str, version: str | None, protected: bool | None) -> Change:
    """After ``current`` was switched (``version``) or the repository renamed away (None): catalog, then journal.

    A tree that is not format 2 (a format-1 tree waiting for ``republish --all``) gets neither:
    the upgrade reads the repositories as they are, under the same lock.
    """
    with journal_lock(root):
        if tree_format(root) != fmt.FORMAT_VERSION:
            return Change(name, version, protected)
        changed = update_catalog(root, name, present=version is not None, public=protected is False)
        change = Change(name, version, protected, catalog=changed)
        append_change(root, change)
    return change

