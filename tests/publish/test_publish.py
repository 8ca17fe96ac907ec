"""Publish writes the tree of docs/published-format.md; unpublish removes a repository from it."""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pulp_registry import oci, published_format as fmt
from pulp_registry.content import set_tag
from pulp_registry.publish import PublishError, publish_repository, unpublish_repository
from pulp_registry.storage import FilesystemStorage
from tests.publish.sample_content import make_repository, push_image, push_index


def published_root(services: Any) -> Path:
    return Path(services.settings.published_dir)


def live_document(services: Any, name: str) -> dict[str, Any]:
    current = fmt.repository_dir(published_root(services), name) / fmt.CURRENT_LINK
    return json.loads((current / fmt.REPOSITORY_JSON).read_text())


def versions(services: Any, name: str) -> list[str]:
    return sorted(p.name for p in (fmt.repository_dir(published_root(services), name) / fmt.VERSIONS_DIR).iterdir())


def journal(services: Any) -> list[dict[str, Any]]:
    """Every line of every journal segment, oldest first, as the JSON objects the format documents."""
    directory = published_root(services) / fmt.JOURNAL_DIR
    lines: list[dict[str, Any]] = []
    for segment in sorted(directory.glob("*.log")):
        data = segment.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{segment} ends in a partial line"
        lines += [json.loads(line) for line in data.splitlines()]
    return lines


def catalog(services: Any, which: str) -> list[str]:
    return (published_root(services) / fmt.CATALOG_DIR / which).read_text().splitlines()


def test_publish_writes_the_documented_tree(services):
    repo = make_repository(services, "my/app", protected=True)
    digest, raw = push_image(services, repo, "latest", [b"layer one", b"layer two"],
                             annotations={"org.opencontainers.image.title": "demo"})

    result = publish_repository(services, repo["_id"])

    root = published_root(services)
    assert (root / fmt.FORMAT_FILE).read_text() == "pulp-registry-published 2\n"
    segment, tree_id = (root / "journal" / "HEAD").read_text().split()
    assert int(segment) == 1 and len(tree_id) == 32 and int(tree_id, 16) >= 0
    assert journal(services) == [{"name": "my/app", "version": result["version"], "protected": True,
                                  "catalog": True}]
    assert (root / "catalog" / "all").read_text() == "my/app\n"
    assert (root / "catalog" / "public").read_text() == ""
    repo_dir = root / "repositories" / "my%2Fapp"
    current = repo_dir / "current"
    assert current.is_symlink()
    assert os.readlink(current) == f"versions/{result['version']}"
    assert versions(services, "my/app") == [result["version"]]

    document = live_document(services, "my/app")
    manifest = json.loads(raw)
    assert document["format"] == 2
    assert document["version"] == result["version"]
    assert document["name"] == "my/app"
    assert document["repo_id"] == repo["_id"]
    assert document["protected"] is True
    assert document["published"].endswith("Z")
    assert document["tags"] == {"latest": digest}
    assert document["manifests"] == {digest: {
        "media_type": oci.OCI_MANIFEST,
        "size": len(raw),
        "config_media_type": oci.OCI_CONFIG,
        "annotations": {"org.opencontainers.image.title": "demo"},
        "content": raw.decode(),   # small manifests travel in repository.json; absent fields are null
    }}
    expected_blobs = {manifest["config"]["digest"]: manifest["config"]["size"]}
    expected_blobs.update({layer["digest"]: layer["size"] for layer in manifest["layers"]})
    assert document["blobs"] == expected_blobs
    assert result == {"tags": 1, "manifests": 1, "blobs": 3, "version": result["version"]}
    assert services.db.repositories.find_one({"_id": repo["_id"]})["last_published"] is not None


def test_published_blobs_and_manifests_are_hard_links_with_the_stored_bytes(services):
    repo = make_repository(services, "linked")
    digest, raw = push_image(services, repo, "v1", [b"some layer bytes"])
    publish_repository(services, repo["_id"])

    root = published_root(services)
    document = live_document(services, "linked")
    for content_digest in [digest, *document["blobs"]]:
        published = fmt.blob_path(root, content_digest)
        stored = services.storage.local_path(content_digest)
        assert published.read_bytes() == stored.read_bytes()
        assert oci.compute_digest(published.read_bytes()) == content_digest
        assert published.stat().st_ino == stored.stat().st_ino
    assert fmt.blob_path(root, digest).read_bytes() == raw


def test_publish_copies_content_when_the_published_tree_is_on_another_filesystem(services):
    if not os.access("/dev/shm", os.W_OK) or os.stat("/dev/shm").st_dev == os.stat(services.settings.data_dir).st_dev:
        pytest.skip("needs /dev/shm writable and on another filesystem than the data dir")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other_fs:
        services.settings = dataclasses.replace(services.settings, published_dir=other_fs)
        repo = make_repository(services, "copied")
        digest, raw = push_image(services, repo, "v1", [b"copied layer"])
        publish_repository(services, repo["_id"])

        document = live_document(services, "copied")
        for content_digest in [digest, *document["blobs"]]:
            published = fmt.blob_path(Path(other_fs), content_digest)
            assert published.read_bytes() == services.storage.read(content_digest)
            assert published.stat().st_nlink == 1


def test_publish_through_a_storage_without_local_paths_copies(services, tmp_path):
    class StreamOnlyStorage(FilesystemStorage):
        def local_path(self, digest):
            return None

    services.storage = StreamOnlyStorage(services.settings.storage_path)
    repo = make_repository(services, "streamed")
    digest, raw = push_image(services, repo, "v1", [b"streamed layer"])
    publish_repository(services, repo["_id"])
    assert fmt.blob_path(published_root(services), digest).read_bytes() == raw


def test_republish_switches_to_the_new_version_and_keeps_only_the_previous_one(services):
    repo = make_repository(services, "busy/repo")
    first_digest, _ = push_image(services, repo, "v1", [b"first"])
    first = publish_repository(services, repo["_id"])

    second_digest, _ = push_image(services, repo, "v2", [b"second"])
    second = publish_repository(services, repo["_id"])
    # One journal line per publish; the catalog changed with the first only (the name was new).
    assert journal(services) == [
        {"name": "busy/repo", "version": first["version"], "protected": False, "catalog": True},
        {"name": "busy/repo", "version": second["version"], "protected": False, "catalog": False}]
    assert versions(services, "busy/repo") == sorted([first["version"], second["version"]])
    assert live_document(services, "busy/repo")["tags"] == {"v1": first_digest, "v2": second_digest}

    third = publish_repository(services, repo["_id"])
    assert versions(services, "busy/repo") == sorted([second["version"], third["version"]])
    current = fmt.repository_dir(published_root(services), "busy/repo") / "current"
    assert os.readlink(current) == f"versions/{third['version']}"
    leftovers = [p.name for p in current.parent.iterdir() if p.name not in ("current", "versions")]
    assert leftovers == []


def test_republish_after_a_tag_is_removed_no_longer_lists_it(services):
    repo = make_repository(services, "retag")
    push_image(services, repo, "old", [b"old layer"])
    publish_repository(services, repo["_id"])
    services.db.tags.delete_one({"repo_id": repo["_id"], "name": "old"})
    publish_repository(services, repo["_id"])
    assert live_document(services, "retag")["tags"] == {}


PLATFORMS = {"amd64": {"architecture": "amd64", "os": "linux"}, "arm64": {"architecture": "arm64", "os": "linux"}}


def push_two_platform_index(services: Any, repo: dict[str, Any], tag: str) -> tuple[tuple[str, bytes], ...]:
    """An OCI index tagged ``tag`` over an untagged linux/amd64 and linux/arm64 image: (amd64, arm64, index)."""
    children = [push_image(services, repo, None, [f"{arch} layer".encode()], architecture=arch) for arch in PLATFORMS]
    index = push_index(services, repo, tag, [(digest, raw, PLATFORMS[arch])
                                              for (digest, raw), arch in zip(children, PLATFORMS)])
    return (*children, index)


def test_a_manifest_list_is_published_with_its_children_and_their_platforms(services):
    repo = make_repository(services, "multi/arch")
    amd64, arm64, (index_digest, index_raw) = push_two_platform_index(services, repo, "latest")
    platforms = [PLATFORMS["amd64"], PLATFORMS["arm64"]]

    result = publish_repository(services, repo["_id"])

    document = live_document(services, "multi/arch")
    assert document["tags"] == {"latest": index_digest}
    assert set(document["manifests"]) == {index_digest, amd64[0], arm64[0]}
    index_entry = document["manifests"][index_digest]
    assert index_entry["media_type"] == oci.OCI_INDEX
    assert index_entry["size"] == len(index_raw)
    assert index_entry["platforms"] == [{"digest": amd64[0], "platform": platforms[0]},
                                        {"digest": arm64[0], "platform": platforms[1]}]
    assert "platforms" not in document["manifests"][amd64[0]]
    root = published_root(services)
    for digest, raw in (amd64, arm64, (index_digest, index_raw)):
        assert fmt.blob_path(root, digest).read_bytes() == raw
    assert result["manifests"] == 3
    assert result["blobs"] == 4  # one config per architecture and one layer each


def test_each_tag_has_a_document_of_its_own_holding_its_manifest_and_a_lists_children(services):
    repo = make_repository(services, "tagged/docs", protected=True)
    amd64, arm64, (index_digest, index_raw) = push_two_platform_index(services, repo, "multi")
    set_tag(services.db, repo["_id"], "plain", amd64[0])

    result = publish_repository(services, repo["_id"])

    document = live_document(services, "tagged/docs")
    tags_dir = fmt.repository_dir(published_root(services), "tagged/docs") / fmt.CURRENT_LINK / "tags"
    assert sorted(p.name for p in tags_dir.iterdir()) == ["multi", "plain"]
    plain = json.loads((tags_dir / "plain").read_bytes())
    assert plain == {"format": 2, "version": result["version"], "name": "tagged/docs", "repo_id": repo["_id"],
                     "protected": True, "tags": {"plain": amd64[0]},
                     "manifests": {amd64[0]: document["manifests"][amd64[0]]}, "blobs": {}}
    assert plain["manifests"][amd64[0]]["content"] == amd64[1].decode()
    multi = json.loads((tags_dir / "multi").read_bytes())
    assert multi["tags"] == {"multi": index_digest}
    assert multi["manifests"][index_digest]["content"] == index_raw.decode()
    assert multi["manifests"][index_digest]["platforms"] == document["manifests"][index_digest]["platforms"]
    # the children are listed (the document obeys the rules Crane loads by), their bytes stay in blobs/
    assert set(multi["manifests"]) == {index_digest, amd64[0], arm64[0]}
    assert "content" not in multi["manifests"][arm64[0]]
    for tag_document in (plain, multi):
        assert fmt.repository_problems(tag_document) == []


def test_an_empty_repository_publishes_an_empty_version(services):
    repo = make_repository(services, "empty")
    result = publish_repository(services, repo["_id"])
    document = live_document(services, "empty")
    assert (document["tags"], document["manifests"], document["blobs"]) == ({}, {}, {})
    assert result["tags"] == result["manifests"] == result["blobs"] == 0


def test_publish_reports_progress_of_each_step(services):
    repo = make_repository(services, "progress")
    push_image(services, repo, "v1", [b"a", b"b"])
    reports: list[dict[str, Any]] = []
    publish_repository(services, repo["_id"], progress=reports.append)
    assert {"step": "manifests", "done": 1, "total": 1} in reports
    assert {"step": "blobs", "done": 3, "total": 3} in reports
    assert reports[-1] == {"step": "switch", "done": 1, "total": 1}


def test_publishing_an_unknown_repository_fails_and_writes_nothing(services):
    with pytest.raises(PublishError, match="does not exist"):
        publish_repository(services, "no-such-repo")
    assert not (published_root(services) / "repositories").exists()


def test_content_missing_from_storage_fails_the_publish_and_keeps_the_live_version(services):
    repo = make_repository(services, "broken")
    push_image(services, repo, "v1", [b"good"])
    good = publish_repository(services, repo["_id"])
    lost_layer = b"about to be lost"
    push_image(services, repo, "v2", [lost_layer])
    services.storage.delete(oci.compute_digest(lost_layer))

    with pytest.raises(PublishError, match="missing from content storage"):
        publish_repository(services, repo["_id"])
    current = fmt.repository_dir(published_root(services), "broken") / "current"
    assert os.readlink(current) == f"versions/{good['version']}"
    assert set(live_document(services, "broken")["tags"]) == {"v1"}


def test_unpublish_removes_the_repository_and_journals_the_removal(services):
    kept = make_repository(services, "kept")
    gone = make_repository(services, "gone/app")
    push_image(services, kept, "v1", [b"kept layer"])
    push_image(services, gone, "v1", [b"gone layer"])
    publish_repository(services, kept["_id"])
    publish_repository(services, gone["_id"])
    assert catalog(services, "all") == catalog(services, "public") == ["gone/app", "kept"]

    unpublish_repository(services.settings, "gone/app")

    root = published_root(services)
    assert not fmt.repository_dir(root, "gone/app").exists()
    assert fmt.repository_dir(root, "kept").is_dir()
    assert journal(services)[-1] == {"name": "gone/app", "version": None, "protected": None, "catalog": True}
    assert len(journal(services)) == 3
    assert catalog(services, "all") == catalog(services, "public") == ["kept"]
    assert [p.name for p in root.iterdir() if p.name.startswith(".trash")] == []


def test_unpublishing_a_repository_never_published_is_a_no_op(services):
    unpublish_repository(services.settings, "never/published")
    assert not fmt.repository_dir(published_root(services), "never/published").exists()
    assert not (published_root(services) / fmt.JOURNAL_DIR).exists() or journal(services) == []
