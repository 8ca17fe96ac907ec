"""Content storage keeps only verified bytes under a digest, whatever it finds on disk."""
from __future__ import annotations

import os

import pytest

from pulp_registry.oci import compute_digest
from pulp_registry.registry_errors import BlobTooLarge, BlobUploadUnknown, RangeInvalid
from pulp_registry.storage import FilesystemStorage, SizeLimit

CONTENT = os.urandom(10_000)
DIGEST = compute_digest(CONTENT)


@pytest.fixture
def storage(tmp_path) -> FilesystemStorage:
    return FilesystemStorage(tmp_path / "content")


def test_a_stored_file_of_the_wrong_size_is_replaced_by_the_next_verified_write(storage):
    storage.put_bytes(CONTENT, DIGEST)
    with storage.path(DIGEST).open("ab") as damaged:
        damaged.write(b"appended by someone")
    assert storage.put_bytes(CONTENT, DIGEST) == len(CONTENT)
    assert storage.read(DIGEST) == CONTENT


def test_a_finished_upload_replaces_a_damaged_copy_too(storage):
    storage.path(DIGEST).parent.mkdir(parents=True)
    storage.path(DIGEST).write_bytes(CONTENT[:100])
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [CONTENT])
    assert storage.upload_finish(upload_id, DIGEST) == len(CONTENT)
    assert storage.read(DIGEST) == CONTENT


def test_a_patch_after_the_finish_took_the_session_is_unknown_and_changes_nothing(storage):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [CONTENT])
    storage.upload_finish(upload_id, DIGEST)
    with pytest.raises(BlobUploadUnknown):
        storage.upload_append(upload_id, [b"late chunk"])
    assert storage.read(DIGEST) == CONTENT
    assert list(storage.uploads_dir.iterdir()) == []


def test_a_patch_whose_session_was_taken_while_it_waited_writes_nothing(storage):
    """The PATCH opened the session file, then the finish renamed it away: the PATCH must notice."""
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [CONTENT])
    opened = os.open(storage.uploads_dir / upload_id, os.O_RDONLY)
    try:
        os.rename(storage.uploads_dir / upload_id, storage.uploads_dir / f"{upload_id}.finishing-test")
        assert not storage._still_named(opened, storage.uploads_dir / upload_id)
    finally:
        os.close(opened)


def test_a_chunk_must_start_where_the_session_ends(storage):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [b"0123"], expected_start=0)
    with pytest.raises(RangeInvalid):
        storage.upload_append(upload_id, [b"89"], expected_start=8)
    assert storage.upload_size(upload_id) == 4


def test_a_chunk_over_the_limit_is_cut_off_and_the_session_keeps_what_it_had(storage):
    limit = SizeLimit(6, lambda: BlobTooLarge("too large"))
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [b"0123"], limit=limit)
    with pytest.raises(BlobTooLarge):
        storage.upload_append(upload_id, [b"45", b"678"], limit=limit)
    assert storage.upload_size(upload_id) == 4
    with pytest.raises(BlobTooLarge):
        storage.put_stream([CONTENT], DIGEST, limit=limit)
    assert not storage.exists(DIGEST)
    assert list(storage.tmp_dir.iterdir()) == []


def test_content_directories_are_created_level_by_level(storage):
    storage.put_bytes(CONTENT, DIGEST)
    algorithm, hexdigest = DIGEST.split(":")
    assert storage.path(DIGEST) == storage.blobs_dir / algorithm / hexdigest[:2] / hexdigest
    assert storage.read(DIGEST) == CONTENT
