"""The published tree as orphan clean-up sees it: what versions list, its blob files, its leftovers.

Crane reads the tree; the publisher writes it (``publish.py``); orphan clean-up
(``orphans.py``) removes from it what no version Crane may serve lists, and what
a killed publish or removal left behind.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from pulp_registry import oci
from pulp_registry import published_format as fmt

log = logging.getLogger(__name__)


def published_root(services: Any) -> Path:
    return Path(services.settings.published_dir)


def published_listing(root: Path, idle_since: float) -> set[str] | None:
    """Every digest a version Crane may serve lists; None if a version cannot be read (then nothing
    of the published tree may be removed).

    Kept: the current version, versions newer than it (a publish writing them), and older ones
    while ``current`` was switched after ``idle_since`` (a Crane that has not noticed the switch,
    or a pull under way, still serves them).
    """
    listed: set[str] = set()
    for repo_dir in _entries(root / fmt.REPOSITORIES_DIR):
        if fmt.is_temporary_name(repo_dir.name) or not repo_dir.is_dir():
            continue
        current = fmt.current_version(repo_dir)
        try:
            switched = (repo_dir / fmt.CURRENT_LINK).lstat().st_mtime
        except FileNotFoundError:
            switched = None
        for version in fmt.version_names(repo_dir):
            superseded = current is not None and version < current
            if superseded and switched is not None and switched < idle_since:
                continue
            try:
                listed |= fmt.listed_digests(fmt.read_version(repo_dir, version))
            except FileNotFoundError:
                if version == current:
                    log.warning("%s: current version %s has no repository.json", repo_dir, version)
                    return None
            except (OSError, ValueError) as exc:
                log.warning("cannot read version %s of %s (%s): nothing of the published tree is removed",
                            version, repo_dir, exc)
                return None
    return listed


def _entries(directory: Path) -> list[Path]:
    """The entries of ``directory``, sorted; none when it is gone (a publish or a removal deletes
    directories while clean-up walks the tree)."""
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def blob_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(digest, path) of every file of the published ``blobs/``; dot names are leftovers."""
    for algorithm_dir in _entries(root / fmt.BLOBS_DIR):
        if fmt.is_temporary_name(algorithm_dir.name):
            continue
        for path in _entries(algorithm_dir):
            digest = f"{algorithm_dir.name}:{path.name}"
            if not fmt.is_temporary_name(path.name) and oci.is_digest(digest) and path.is_file():
                yield digest, path


def remove_if_idle(path: Path, idle_since: float, use_ctime: bool = False) -> int | None:
    """Unlink ``path`` unless it changed at or after ``idle_since``; its size (0 if gone), None if kept.

    ``use_ctime``: a hard link made moments ago (a publish's temporary link) has the old mtime
    of its bytes but a new ctime.
    """
    try:
        stat = path.lstat()
    except FileNotFoundError:
        return 0
    changed = max(stat.st_mtime, stat.st_ctime) if use_ctime else stat.st_mtime
    if changed >= idle_since:
        return None
    if path.is_dir() and not path.is_symlink():
        size = tree_size(path)
        shutil.rmtree(path, ignore_errors=True)
        return size
    path.unlink(missing_ok=True)
    return stat.st_size


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (what removing it frees); what vanishes meanwhile counts 0."""
    total = 0
    for directory, _subdirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                continue
    return total


def leftovers(root: Path) -> Iterator[Path]:
    """``.trash-*`` and temporary files of the published tree (``current.<random>`` links are the publisher's).

    In ``journal/`` and ``catalog/`` only ``.*.tmp`` files: the writers' ``journal/.lock`` stays, as do the
    segments, ``HEAD`` and the catalog files.
    """
    yield from (entry for entry in _entries(root) if fmt.is_temporary_name(entry.name))
    for directory in (root / fmt.JOURNAL_DIR, root / fmt.CATALOG_DIR):
        yield from (entry for entry in _entries(directory)
                    if fmt.is_temporary_name(entry.name) and entry.name.endswith(".tmp"))
    for algorithm_dir in _entries(root / fmt.BLOBS_DIR):
        yield from (entry for entry in _entries(algorithm_dir) if fmt.is_temporary_name(entry.name))
    for repo_dir in _entries(root / fmt.REPOSITORIES_DIR):
        for version_dir in _entries(repo_dir / fmt.VERSIONS_DIR):
            yield from (entry for entry in _entries(version_dir) if fmt.is_temporary_name(entry.name))
