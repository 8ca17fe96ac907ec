"""The change journal of the published tree: what each publish or removal changed, in order.

Crane keeps only the repositories it was asked for, so it must learn which of
them a publish replaced without looking at every repository. Writers (the
publisher, one at a time under ``journal_lock``) append one JSON line per
change to the current segment; each Crane worker reads on from the offset it
reached, so a change costs it work proportional to that change. Segments roll
at ``SEGMENT_BYTES`` and old ones are deleted after ``RETENTION_SECONDS``; a
reader that finds its segment gone, or the tree replaced, has lost track and
forgets what it cached (``JournalReader.poll`` returns None).

Everything is opened by name for each read, so a shared filesystem with
close-to-open consistency (NFS) shows every host the whole journal. Writers
lock with ``fcntl.lockf`` (POSIX locks, which NFSv4 carries) and, inside one
process, a thread lock, since POSIX locks do not exclude threads.
Standard library only: Crane imports it.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pulp_registry.durable import fsync_dir, make_dirs, write_atomic
from pulp_registry.published_format import JOURNAL_DIR

log = logging.getLogger(__name__)

HEAD_FILE = "HEAD"
LOCK_FILE = ".lock"
#: A segment this big after an append makes the writer start the next one.
SEGMENT_BYTES = 1024 * 1024
#: Segments before the previous one are deleted once untouched this long; a reader idle longer resyncs.
RETENTION_SECONDS = 3600.0
_TAIL_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Change:
    """One repository changed: published as ``version``, or removed (``version`` None)."""

    name: str
    version: str | None
    protected: bool | None = None
    #: The catalog files were rewritten with this change (a name came, went or changed protection).
    catalog: bool = False

    def to_line(self) -> bytes:
        return (json.dumps({"name": self.name, "version": self.version, "protected": self.protected,
                            "catalog": self.catalog}, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_line(cls, line: bytes) -> "Change":
        """Raise ValueError if ``line`` is not a journal line."""
        try:
            doc = json.loads(line)
            name, version = doc["name"], doc["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a journal line: {line[:200]!r}") from exc
        if not isinstance(name, str) or not (version is None or isinstance(version, str)):
            raise ValueError(f"not a journal line: {line[:200]!r}")
        protected = doc.get("protected")
        return cls(name, version, protected if isinstance(protected, bool) else None, doc.get("catalog") is True)


def journal_dir(root: Path) -> Path:
    return Path(root) / JOURNAL_DIR


def segment_path(root: Path, segment: int) -> Path:
    return journal_dir(root) / f"{segment:020d}.log"


def read_head(root: Path) -> tuple[int, str] | None:
    """``(segment, tree id)`` from ``journal/HEAD``; None if there is no journal (or HEAD is unreadable)."""
    try:
        text = (journal_dir(root) / HEAD_FILE).read_text()
    except OSError:
        return None
    segment, _, tree_id = text.strip().partition(" ")
    if not segment.isdigit() or int(segment) < 1 or not tree_id:
        log.error("%s: %r is not '<segment> <tree id>'", journal_dir(root) / HEAD_FILE, text[:100])
        return None
    return int(segment), tree_id


# --- writers ----------------------------------------------------------------------------

_process_lock = threading.RLock()
_held: set[str] = set()


@contextmanager
def journal_lock(root: Path) -> Iterator[None]:
    """Be the only writer of the journal and the catalog; re-entrant within a thread.

    Closing any descriptor of the lock file drops a process's POSIX lock, so the
    file is opened once per outermost acquisition and nested calls only count.
    """
    lock_path = journal_dir(root) / LOCK_FILE
    with _process_lock:
        key = str(lock_path)
        if key in _held:
            yield
            return
        make_dirs(lock_path.parent)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            _held.add(key)
            try:
                yield
            finally:
                _held.discard(key)
        finally:
            os.close(fd)


def _write_head(root: Path, segment: int, tree_id: str) -> None:
    write_atomic(journal_dir(root) / HEAD_FILE, f"{segment} {tree_id}\n".encode())


def _create_segment(root: Path, segment: int) -> None:
    fd = os.open(segment_path(root, segment), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(journal_dir(root))


def init_journal(root: Path) -> None:
    """Give a tree an empty journal (segment 1, a new tree id); nothing if it has one."""
    with journal_lock(root):
        if read_head(root) is not None:
            return
        _create_segment(root, 1)
        _write_head(root, 1, uuid.uuid4().hex)


def _complete_length(fd: int, size: int) -> int:
    """Bytes up to and including the last newline: what a writer killed mid-line did not finish."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def append_change(root: Path, change: Change) -> None:
    """Append ``change`` durably; the caller holds ``journal_lock``. Rolls the segment when it is full."""
    head = read_head(root)
    if head is None:
        _create_segment(root, 1)
        head = (1, uuid.uuid4().hex)
        _write_head(root, *head)
    segment, tree_id = head
    fd = os.open(segment_path(root, segment), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        size = os.fstat(fd).st_size
        complete = _complete_length(fd, size) if size else 0
        if complete != size:
            log.warning("journal segment %d ended in a partial line (a writer was killed); cut at %d bytes",
                        segment, complete)
            os.ftruncate(fd, complete)
        line = change.to_line()
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to the journal ({written} of {len(line)} bytes)")
        os.fsync(fd)
        size = complete + written
    finally:
        os.close(fd)
    if size >= SEGMENT_BYTES:
        _roll(root, segment, tree_id)


def _roll(root: Path, segment: int, tree_id: str) -> None:
    _create_segment(root, segment + 1)
    _write_head(root, segment + 1, tree_id)
    cutoff = time.time() - RETENTION_SECONDS
    for entry in journal_dir(root).iterdir():
        stem = entry.name.removesuffix(".log")
        if entry.name.endswith(".log") and stem.isdigit() and int(stem) < segment:
            try:
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except FileNotFoundError:
                pass


# --- readers ----------------------------------------------------------------------------

class JournalReader:
    """Reads the changes since its last read; one per process, used under the caller's lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._started = False
        self._segment = 0
        self._offset = 0
        self._tree_id = ""

    @property
    def position(self) -> tuple[int, int]:
        """``(segment, offset)`` read up to: how far this reader is."""
        return self._segment, self._offset

    def start(self) -> bool:
        """Go to the end of the journal without reading it; False if the tree has no journal yet."""
        head = read_head(self.root)
        if head is None:
            return False
        segment, tree_id = head
        try:
            fd = os.open(segment_path(self.root, segment), os.O_RDONLY)
        except FileNotFoundError:
            offset = 0   # HEAD was just replaced and the new segment is not visible yet: it is empty
        else:
            try:
                offset = _complete_length(fd, os.fstat(fd).st_size)
            finally:
                os.close(fd)
        self._segment, self._offset, self._tree_id, self._started = segment, offset, tree_id, True
        return True

    def poll(self) -> list[Change] | None:
        """The changes appended since the last call, oldest first; None when this reader lost track.

        Lost track: the journal appeared (or came back) after the reader started
        without one, the tree was replaced (another tree id, or HEAD went back),
        a segment the reader had not finished was deleted, or a line is not a
        journal line. The caller then forgets everything it cached; the reader
        has moved to the end of the journal.
        """
        if not self._started:
            return None if self.start() else []
        head = read_head(self.root)
        if head is None:
            return []
        head_segment, tree_id = head
        if tree_id != self._tree_id or head_segment < self._segment:
            log.warning("the published tree was replaced (journal %s, segment %d): forgetting every repository",
                        tree_id, head_segment)
            self.start()
            return None
        changes: list[Change] = []
        segment, offset, lost = self._segment, self._offset, False
        while True:
            try:
                with open(segment_path(self.root, segment), "rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except FileNotFoundError:
                if segment == head_segment and offset == 0:
                    break   # the new segment's name is not visible here yet
                log.warning("journal segment %d was removed before this process read it: forgetting "
                            "every repository", segment)
                self.start()
                return None
            complete = data[:data.rfind(b"\n") + 1]
            for line in complete.splitlines():
                try:
                    changes.append(Change.from_line(line))
                except ValueError as exc:
                    log.error("journal segment %d: %s", segment, exc)
                    lost = True
            offset += len(complete)
            if segment >= head_segment:
                break
            segment, offset = segment + 1, 0
        self._segment, self._offset = segment, offset
        return None if lost else changes
