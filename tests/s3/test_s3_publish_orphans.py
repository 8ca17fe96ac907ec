"""Publishing and orphan clean-up with ``storage_driver: s3``: configs and layers are copied to their
published keys, manifests go to the local tree, and clean-up removes what no version lists, from the
bucket too."""
from __future__ import annotations

import hashlib
import json

import pytest

from pulp_registry import orphans, repositories
from pulp_registry.config import Settings
from pulp_registry.publish import publish_repository
from tests.orphans.helpers import no_progress, published_path
from tests.publish.sample_content import make_repository, push_image
from tests.s3.conftest import PREFIX


@pytest.fixture
def settings(tmp_path, bucket) -> Settings:
    """The ``services`` fixture of tests/conftest.py, with its content in the test's bucket."""
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://",
                    bcrypt_rounds=4, credential_cache_seconds=0, storage_driver="s3", **bucket.settings())


def blob_digests(raw: bytes) -> list[str]:
    manifest = json.loads(raw)
    return [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]


def published_key(digest: str) -> str:
    return PREFIX + "published/blobs/" + digest.replace(":", "/")


def content_key(digest: str) -> str:
    return PREFIX + "content/" + digest.replace(":", "/")


def test_publish_copies_configs_and_layers_in_the_bucket_and_writes_manifests_to_the_tree(services, bucket):
    repo = make_repository(services, "s3/app")
    manifest_digest, raw = push_image(services, repo, "v1", [b"layer one", b"layer two"])

    publish_repository(services, repo["_id"])

    keys = bucket.keys()
    assert all(published_key(digest) in keys for digest in blob_digests(raw))
    assert published_key(manifest_digest) not in keys
    assert published_path(services, manifest_digest).read_bytes() == raw
    assert not any(published_path(services, digest).exists() for digest in blob_digests(raw))
    assert all(key.startswith(PREFIX) for key in keys)


def test_a_published_blob_outlives_its_content_and_clean_up_removes_both_once_unlisted(services, bucket):
    keep = make_repository(services, "keep/app")
    drop = make_repository(services, "drop/app")
    _keep_digest, keep_raw = push_image(services, keep, "v1", [b"shared layer", b"keep layer"])
    drop_digest, drop_raw = push_image(services, drop, "v1", [b"shared layer", b"drop layer"])
    for repo in (keep, drop):
        publish_repository(services, repo["_id"])
    only_drop = [digest for digest in blob_digests(drop_raw) if digest not in blob_digests(keep_raw)]

    repositories.delete_repository(services, drop["_id"])
    result = orphans.cleanup_orphans(services, no_progress, grace_period=0)

    keys = bucket.keys()
    assert result["manifests"] == 1 and result["blobs"] == len(only_drop)
    for digest in only_drop:
        assert content_key(digest) not in keys and published_key(digest) not in keys
    assert not published_path(services, drop_digest).exists()
    for digest in blob_digests(keep_raw):
        assert content_key(digest) in keys and published_key(digest) in keys
    assert orphans.find_orphans(services, grace_period=0)["count"] == 0


def test_a_published_copy_nothing_lists_nor_holds_is_removed_after_the_grace_period(services, bucket):
    stray = b"published by a version since removed"
    digest = "sha256:" + hashlib.sha256(stray).hexdigest()
    bucket.client.put_object(Bucket=bucket.name, Key=published_key(digest), Body=stray)

    assert orphans.find_orphans(services)["count"] == 0     # younger than the grace period: kept
    found = orphans.find_orphans(services, grace_period=0)
    result = orphans.cleanup_orphans(services, no_progress, grace_period=0)

    assert [unit["digest"] for unit in found["blobs"]] == [digest]
    assert result["blobs"] == 1 and result["bytes_freed"] == len(stray)
    assert bucket.keys() == []


def test_backup_copies_the_buckets_content_and_restore_fills_another_bucket_and_republishes(
        services, bucket, s3_server, tmp_path):
    from pulp_registry.backup import backup
    from pulp_registry.restore import restore
    from pulp_registry.services import build_services
    from tests.mongo_rules import CheckingClient
    from tests.s3.conftest import Bucket

    repo = make_repository(services, "s3/app")
    manifest_digest, raw = push_image(services, repo, "v1", [b"backed up layer"])
    publish_repository(services, repo["_id"])
    other = Bucket(s3_server, bucket.name + "-restored", s3_server.client())
    other.client.create_bucket(Bucket=other.name)
    target = build_services(Settings(data_dir=str(tmp_path / "target"), mongo_url="mongomock://",
                                     mongo_database="restored", broker_url="memory://", bcrypt_rounds=4,
                                     storage_driver="s3", **other.settings()), mongo_client=CheckingClient())

    result = backup(services, tmp_path / "bk", settle_seconds=0)
    restore(target, tmp_path / "bk")

    assert result.content_files == len(blob_digests(raw)) + 1
    assert target.storage.read(manifest_digest) == raw
    assert all(published_key(digest) in other.keys() for digest in blob_digests(raw))
    assert published_path(target, manifest_digest).read_bytes() == raw
