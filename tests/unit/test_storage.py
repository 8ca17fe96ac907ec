"""Content storage: nothing is visible under a digest unless its bytes match it."""
from __future__ import annotations

import io

import pytest

from pulp_registry.oci import compute_digest
from pulp_registry.registry_errors import BlobUploadUnknown, DigestInvalid, SizeInvalid
from pulp_registry.storage import FilesystemStorage, open_storage

CONTENT = b"layer bytes " * 1000
DIGEST = compute_digest(CONTENT)


@pytest.fixture
def storage(tmp_path) -> FilesystemStorage:
    return FilesystemStorage(tmp_path / "content")


def leftovers(storage: FilesystemStorage) -> list:
    """Files outside the blob tree: temporary files and upload sessions."""
    return [p for p in (*storage.tmp_dir.rglob("*"), *storage.uploads_dir.rglob("*")) if p.is_file()]


def blob_files(storage: FilesystemStorage) -> list:
    return [p for p in storage.blobs_dir.rglob("*") if p.is_file()]


def test_put_keeps_content_under_its_digest(storage):
    assert storage.put_bytes(CONTENT, DIGEST) == len(CONTENT)
    assert storage.exists(DIGEST)
    assert storage.size(DIGEST) == len(CONTENT)
    assert storage.read(DIGEST) == CONTENT
    with storage.open(DIGEST) as stream:
        assert stream.read() == CONTENT
    assert storage.local_path(DIGEST).read_bytes() == CONTENT
    assert leftovers(storage) == []


def test_put_stream_accepts_files_and_chunk_iterators(storage):
    assert storage.put_stream(io.BytesIO(CONTENT), DIGEST, len(CONTENT)) == len(CONTENT)
    other = b"second"
    assert storage.put_stream(iter([b"sec", b"", b"ond"]), compute_digest(other)) == len(other)
    assert storage.read(compute_digest(other)) == other


def test_put_with_wrong_digest_keeps_nothing(storage):
    wrong = compute_digest(b"something else")
    with pytest.raises(DigestInvalid):
        storage.put_bytes(CONTENT, wrong)
    assert not storage.exists(wrong) and not storage.exists(DIGEST)
    assert blob_files(storage) == [] and leftovers(storage) == []


def test_put_with_wrong_size_keeps_nothing(storage):
    with pytest.raises(SizeInvalid):
        storage.put_stream([CONTENT], DIGEST, len(CONTENT) + 1)
    assert not storage.exists(DIGEST)
    assert blob_files(storage) == [] and leftovers(storage) == []


def test_put_with_malformed_digest_is_refused(storage):
    with pytest.raises(DigestInvalid):
        storage.put_bytes(CONTENT, "sha256:abc")
    assert blob_files(storage) == []


def test_same_blob_is_stored_once(storage):
    storage.put_bytes(CONTENT, DIGEST)
    storage.put_bytes(CONTENT, DIGEST)
    assert blob_files(storage) == [storage.path(DIGEST)]
    assert leftovers(storage) == []


def test_sha512_content_is_verified_too(storage):
    digest = compute_digest(CONTENT, "sha512")
    storage.put_bytes(CONTENT, digest)
    assert storage.read(digest) == CONTENT


def test_unknown_digest_is_absent(storage):
    assert not storage.exists(DIGEST)
    assert storage.size(DIGEST) is None
    assert storage.local_path(DIGEST) is None


def test_delete_removes_the_blob(storage):
    storage.put_bytes(CONTENT, DIGEST)
    storage.delete(DIGEST)
    assert not storage.exists(DIGEST)
    storage.delete(DIGEST)  # deleting twice is fine


def test_chunked_upload_appends_and_finishes_under_its_digest(storage):
    upload_id = storage.upload_start()
    assert storage.upload_size(upload_id) == 0
    assert storage.upload_append(upload_id, [CONTENT[:100]]) == 100
    assert storage.upload_append(upload_id, io.BytesIO(CONTENT[100:])) == len(CONTENT)
    assert storage.upload_size(upload_id) == len(CONTENT)
    assert not storage.exists(DIGEST)  # not visible before it is finished
    assert storage.upload_finish(upload_id, DIGEST) == len(CONTENT)
    assert storage.read(DIGEST) == CONTENT
    assert leftovers(storage) == []
    with pytest.raises(BlobUploadUnknown):
        storage.upload_size(upload_id)


def test_upload_finished_with_wrong_digest_keeps_nothing(storage):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [CONTENT])
    wrong = compute_digest(b"other")
    with pytest.raises(DigestInvalid):
        storage.upload_finish(upload_id, wrong)
    assert not storage.exists(wrong) and not storage.exists(DIGEST)
    assert blob_files(storage) == [] and leftovers(storage) == []


def test_upload_of_a_blob_already_stored_finishes_without_a_second_copy(storage):
    storage.put_bytes(CONTENT, DIGEST)
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [CONTENT])
    storage.upload_finish(upload_id, DIGEST)
    assert blob_files(storage) == [storage.path(DIGEST)] and leftovers(storage) == []


def test_cancelled_upload_is_gone(storage):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, [b"partial"])
    storage.upload_cancel(upload_id)
    assert leftovers(storage) == []
    with pytest.raises(BlobUploadUnknown):
        storage.upload_append(upload_id, [b"more"])
    with pytest.raises(BlobUploadUnknown):
        storage.upload_finish(upload_id, DIGEST)


@pytest.mark.parametrize("upload_id", ["0b0e8f0c-2d5a-4a9e-9d3e-6c1f0f5e7a11", "not-a-uuid", "../../etc/passwd", ""])
def test_unknown_upload_ids_are_refused(storage, upload_id):
    with pytest.raises(BlobUploadUnknown):
        storage.upload_size(upload_id)
    with pytest.raises(BlobUploadUnknown):
        storage.upload_append(upload_id, [b"x"])
    with pytest.raises(BlobUploadUnknown):
        storage.upload_finish(upload_id, DIGEST)
    assert leftovers(storage) == [] and blob_files(storage) == []


def test_clear_tmp_removes_files_left_by_a_dead_writer(storage):
    (storage.tmp_dir / "tmpabandoned").write_bytes(b"half")
    storage.clear_tmp()
    assert leftovers(storage) == [] and storage.tmp_dir.is_dir()


def test_open_storage_opens_the_filesystem_driver_at_storage_path(tmp_path):
    from pulp_registry.config import Settings

    storage = open_storage(Settings(data_dir=str(tmp_path), storage_path=str(tmp_path / "content")))
    assert isinstance(storage, FilesystemStorage) and storage.root == tmp_path / "content"
