"""The change journal: what a reader sees of what writers append, across segments and accidents."""
from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from pulp_registry import published_journal as journal
from pulp_registry.published_journal import Change, JournalReader, append_change, init_journal, journal_lock


def write(root: Path, *changes: Change) -> None:
    with journal_lock(root):
        for change in changes:
            append_change(root, change)


def test_a_reader_started_late_sees_only_what_follows_in_order(tmp_path):
    init_journal(tmp_path)
    write(tmp_path, Change("old/one", "v1"))
    reader = JournalReader(tmp_path)
    assert reader.start()
    assert reader.poll() == []
    write(tmp_path, Change("a/b", "v2", protected=True, catalog=True), Change("a/b", None, catalog=True))
    assert reader.poll() == [Change("a/b", "v2", True, True), Change("a/b", None, None, True)]
    assert reader.poll() == []


def test_init_is_idempotent_and_keeps_the_tree_id(tmp_path):
    init_journal(tmp_path)
    head = journal.read_head(tmp_path)
    init_journal(tmp_path)
    assert journal.read_head(tmp_path) == head


def test_a_partial_line_is_not_read_and_the_next_writer_cuts_it(tmp_path):
    init_journal(tmp_path)
    reader = JournalReader(tmp_path)
    reader.start()
    segment = journal.segment_path(tmp_path, 1)
    with open(segment, "ab") as out:
        out.write(b'{"name": "half", "vers')     # a writer killed mid-line
    assert reader.poll() == []
    write(tmp_path, Change("whole", "v1"))
    assert reader.poll() == [Change("whole", "v1")]
    assert segment.read_bytes().count(b"half") == 0


def test_a_reader_follows_the_writer_into_new_segments(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 200)
    init_journal(tmp_path)
    reader = JournalReader(tmp_path)
    reader.start()
    changes = [Change(f"repo/{number}", f"v{number}") for number in range(20)]
    for change in changes[:7]:
        write(tmp_path, change)
    seen = reader.poll()
    for change in changes[7:]:
        write(tmp_path, change)
    seen += reader.poll()
    assert seen == changes
    assert journal.read_head(tmp_path)[0] > 3


def test_a_reader_whose_segment_was_deleted_has_lost_track(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "SEGMENT_BYTES", 100)
    monkeypatch.setattr(journal, "RETENTION_SECONDS", 0.0)
    init_journal(tmp_path)
    reader = JournalReader(tmp_path)
    reader.start()
    write(tmp_path, Change("x/1", "v1"))
    old = time.time() - 10
    for number in range(2, 12):
        for entry in journal.journal_dir(tmp_path).glob("*.log"):
            os.utime(entry, (old, old))
        write(tmp_path, Change(f"x/{number}", "v"))
    assert not journal.segment_path(tmp_path, 1).exists()
    assert reader.poll() is None
    write(tmp_path, Change("after", "v"))
    assert reader.poll() == [Change("after", "v")]


def test_a_replaced_tree_or_a_garbled_line_means_lost_track(tmp_path):
    init_journal(tmp_path)
    reader = JournalReader(tmp_path)
    reader.start()
    (journal.journal_dir(tmp_path) / journal.HEAD_FILE).write_text("1 another-tree\n")
    assert reader.poll() is None
    with open(journal.segment_path(tmp_path, 1), "ab") as out:
        out.write(b"not json\n")
    assert reader.poll() is None
    assert reader.poll() == []


def test_a_journal_that_appears_after_the_reader_started_means_lost_track(tmp_path):
    reader = JournalReader(tmp_path)
    assert not reader.start()
    assert reader.poll() == []
    init_journal(tmp_path)
    assert reader.poll() is None
    write(tmp_path, Change("a", "v"))
    assert reader.poll() == [Change("a", "v")]


def _append_many(root: str, prefix: str, count: int) -> None:
    for number in range(count):
        write(Path(root), Change(f"{prefix}/{number}", "v" * 50))


def test_processes_appending_at_once_leave_every_change_once_and_whole(tmp_path, monkeypatch):
    init_journal(tmp_path)
    reader = JournalReader(tmp_path)
    reader.start()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(tmp_path), f"p{index}", 200)) for index in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    seen = reader.poll()
    assert seen is not None
    assert sorted(change.name for change in seen) == sorted(f"p{index}/{number}" for index in range(4)
                                                            for number in range(200))
    for index in range(4):   # each writer's changes in its own order
        mine = [change.name for change in seen if change.name.startswith(f"p{index}/")]
        assert mine == [f"p{index}/{number}" for number in range(200)]


@pytest.mark.parametrize("line", [b"[]", b'{"name": 3, "version": null}', b'{"version": "v"}'])
def test_lines_that_are_not_changes_are_refused(line):
    with pytest.raises(ValueError):
        Change.from_line(line)
