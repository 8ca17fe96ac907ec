"""``S3Storage`` against a real S3-compatible server (moto): what is stored, where, and what is refused."""
from __future__ import annotations

import hashlib
import io
import time

import pytest

from pulp_registry.config import ConfigError, Settings
from pulp_registry.registry_errors import DigestInvalid, SizeInvalid
from pulp_registry.s3_storage import S3Storage
from pulp_registry.storage import open_storage
from tests.s3.conftest import PREFIX
from tests.servers import free_port


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def content_key(digest: str) -> str:
    return PREFIX + "content/" + digest.replace(":", "/")


@pytest.fixture
def settings(tmp_path, bucket) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), storage_driver="s3", **bucket.settings())


@pytest.fixture
def storage(settings) -> S3Storage:
    storage = open_storage(settings)
    assert isinstance(storage, S3Storage)
    return storage


def staged_files(storage: S3Storage) -> list[str]:
    """Files left on local disk by pushes (temporary files, upload sessions, committed content)."""
    root = storage.staging.root
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def test_a_pushed_blob_is_stored_under_the_prefix_and_read_back(storage, bucket):
    data = b"layer bytes " * 1000
    digest = digest_of(data)

    assert storage.put_stream(io.BytesIO(data), digest, len(data)) == len(data)

    assert bucket.keys() == [content_key(digest)]
    assert storage.exists(digest) and storage.size(digest) == len(data)
    assert storage.read(digest) == data
    with storage.open(digest) as body:
        assert body.read() == data
    assert storage.local_path(digest) is None
    assert staged_files(storage) == []


def test_an_opened_object_seeks_for_a_range_as_a_file_would(storage):
    data = bytes(range(256)) * 64
    digest = digest_of(data)
    storage.put_bytes(data, digest)

    with storage.open(digest) as stream:
        assert stream.read(4) == data[:4]
        stream.seek(1000)
        assert stream.read(24) == data[1000:1024] and stream.tell() == 1024
        assert stream.read() == data[1024:]


def test_content_with_the_wrong_digest_or_size_is_refused_and_nothing_is_stored(storage, bucket):
    data = b"what the client sent"
    with pytest.raises(DigestInvalid):
        storage.put_bytes(data, digest_of(b"what the client claimed"))
    with pytest.raises(SizeInvalid):
        storage.put_stream(io.BytesIO(data), digest_of(data), len(data) + 1)

    assert bucket.keys() == []
    assert staged_files(storage) == []


def test_a_chunked_upload_is_staged_on_disk_then_stored_once_verified(storage, bucket):
    data = bytes(range(256)) * 300
    digest = digest_of(data)
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, io.BytesIO(data[:10000]))
    assert storage.upload_append(upload_id, io.BytesIO(data[10000:]), expected_start=10000) == len(data)
    assert storage.upload_size(upload_id) == len(data)
    assert bucket.keys() == []       # nothing is in the bucket before the digest was checked

    assert storage.upload_finish(upload_id, digest) == len(data)

    assert bucket.keys() == [content_key(digest)]
    assert storage.read(digest) == data
    assert staged_files(storage) == []


def test_an_upload_finished_with_the_wrong_digest_stores_nothing(storage, bucket):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, io.BytesIO(b"some bytes"))

    with pytest.raises(DigestInvalid):
        storage.upload_finish(upload_id, digest_of(b"other bytes"))

    assert bucket.keys() == []
    assert staged_files(storage) == []


def test_a_blob_bigger_than_a_part_goes_up_in_parts_and_comes_back_whole(storage, bucket, monkeypatch):
    from pulp_registry import s3_storage

    monkeypatch.setattr(s3_storage, "MULTIPART_CHUNK", 5 * 1024 * 1024)   # S3's smallest part
    data = hashlib.sha256(b"seed").digest() * (11 * 1024 * 1024 // 32)
    digest = digest_of(data)

    storage.put_stream(io.BytesIO(data), digest, len(data))

    head = bucket.client.head_object(Bucket=bucket.name, Key=content_key(digest))
    assert head["ETag"].strip('"').endswith("-3")   # three parts
    assert digest_of(storage.read(digest)) == digest


def test_delete_removes_the_object(storage, bucket):
    digest = digest_of(b"gone soon")
    storage.put_bytes(b"gone soon", digest)
    storage.delete(digest)
    assert not storage.exists(digest) and storage.size(digest) is None
    with pytest.raises(FileNotFoundError):
        storage.open(digest)
    assert bucket.keys() == []


def test_orphan_cleanup_sees_content_with_its_last_modified_and_removes_only_idle_objects(storage, bucket):
    old, young = b"old orphan", b"young orphan"
    storage.put_bytes(old, digest_of(old))
    storage.put_bytes(young, digest_of(young))
    bucket.client.put_object(Bucket=bucket.name, Key=PREFIX + "content/sha256/not-a-digest", Body=b"x")
    before = time.time() - 3600

    listed = {stored.digest: stored for stored in storage.iter_content()}

    assert set(listed) == {digest_of(old), digest_of(young)}
    assert listed[digest_of(old)].size == len(old)
    assert listed[digest_of(old)].modified > before
    assert storage.remove_if_idle(digest_of(young), idle_since=before) is None   # written after the cut-off
    assert storage.remove_if_idle(digest_of(old), idle_since=time.time() + 60) == len(old)
    assert storage.remove_if_idle(digest_of(old), idle_since=time.time() + 60) == 0   # already gone
    assert storage.exists(digest_of(young)) and not storage.exists(digest_of(old))


def test_an_unfinished_upload_is_a_leftover_on_local_disk(storage):
    upload_id = storage.upload_start()
    storage.upload_append(upload_id, io.BytesIO(b"abandoned"))

    leftovers = list(storage.iter_leftovers())

    assert [(item.kind, item.upload_id, item.size) for item in leftovers] == [("session", upload_id, 9)]
    assert storage.remove_leftover(leftovers[0], idle_since=time.time() + 60) == 9
    assert list(storage.iter_leftovers()) == []


def test_publishing_copies_content_to_the_published_key_which_survives_the_content(storage, bucket):
    data = b"config bytes"
    digest = digest_of(data)
    storage.put_bytes(data, digest)
    published_key = PREFIX + "published/blobs/" + digest.replace(":", "/")

    assert storage.publish_blob(digest) is True
    assert storage.publish_blob(digest) is True     # already there: kept
    storage.delete(digest)

    assert bucket.keys() == [published_key]
    body = bucket.client.get_object(Bucket=bucket.name, Key=published_key)["Body"].read()
    assert body == data
    assert [stored.digest for stored in storage.iter_published()] == [digest]
    assert storage.publish_blob(digest_of(b"never stored")) is False
    assert storage.remove_published_if_idle(digest, idle_since=time.time() + 60) == len(data)
    assert bucket.keys() == []


def test_a_missing_bucket_stops_start_up_naming_s3_bucket(tmp_path, bucket):
    settings = Settings(data_dir=str(tmp_path), storage_driver="s3", **{**bucket.settings(), "s3_bucket": "nope"})
    with pytest.raises(ConfigError, match=r"^s3_bucket: bucket 'nope' at http://127\.0\.0\.1:\d+ does not exist$"):
        open_storage(settings)


def test_an_unreachable_endpoint_stops_start_up_naming_s3_endpoint_url(tmp_path, bucket):
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=str(tmp_path), storage_driver="s3",
                        **{**bucket.settings(), "s3_endpoint_url": endpoint})
    with pytest.raises(ConfigError, match=f"^s3_endpoint_url: cannot reach {endpoint}"):
        open_storage(settings)


def test_storage_driver_s3_needs_a_bucket(tmp_path):
    with pytest.raises(ConfigError, match="^s3_bucket: required"):
        Settings(data_dir=str(tmp_path), storage_driver="s3")
