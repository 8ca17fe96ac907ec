"""A request by tag for a repository Crane has not loaded is answered from that tag's document alone,
kept as that tag's entry once asked for again.

Tag documents (``versions/<v>/tags/<tag>``, docs/published-format.md) are an
index of ``repository.json``: Crane uses one only when it fits (the repository,
the version and the tag asked for) and otherwise loads the repository as before.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pulp_registry import oci
from pulp_registry import published_format as fmt
from pulp_registry.published_journal import Change, append_change, journal_lock
from pulp_registry.published_tags import TAGS_DIR
from crane.repository_cache import tag_key
from tests.crane.conftest import CraneUnderTest, error_code
from tests.crane.scale_tree import VERSION, repository_name, tag_name, write_published_tree
from tests.crane.test_crane_repository_cache import NEW_VERSION, manifest_path, republish


def listed_digest(root: Path, number: int, tag_number: int = 0) -> str:
    """The digest ``repository.json`` (not a tag document) names for a tag."""
    repo_dir = fmt.repository_dir(root, repository_name(number))
    return fmt.read_version(repo_dir, fmt.current_version(repo_dir))["tags"][tag_name(number, tag_number)]


def tag_file(root: Path, number: int, tag_number: int = 0, version: str = VERSION) -> Path:
    repo_dir = fmt.repository_dir(root, repository_name(number))
    return repo_dir / fmt.VERSIONS_DIR / version / TAGS_DIR / tag_name(number, tag_number)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_tag_is_answered_from_its_document_as_from_the_whole_repository_and_cached_when_asked_again(tree, method):
    crane = CraneUnderTest(tree)
    request = crane.get if method == "GET" else crane.head
    name, tag = repository_name(7), tag_name(7, 2)
    first = request(manifest_path(7, 2))
    assert first.status_code == 200
    assert len(crane.tree.repositories.items) == 0                # a tag asked for once: nothing kept
    second = request(manifest_path(7, 2))
    assert list(crane.tree.repositories.items) == [tag_key(name, tag)]   # asked for again: the tag's entry
    assert crane.tree.repositories.tag_entries == 1 and len(crane.tree.repositories) == 0
    assert crane.tree.repository(name).tags[tag] == listed_digest(tree, 7, 2)   # loaded whole (as by digest)
    whole = request(manifest_path(7, 2))                          # answered from the whole repository
    for response in (first, second, whole):
        assert response.status_code == 200
        assert dict(response.headers) == dict(whole.headers)
        assert response.data == whole.data
    digest = listed_digest(tree, 7, 2)
    assert first.headers["Docker-Content-Digest"] == digest
    if method == "GET":
        assert first.data == fmt.blob_path(tree, digest).read_bytes()
        assert oci.compute_digest(first.data) == digest


def test_a_publish_evicts_the_repositorys_tag_entries(tree):
    crane = CraneUnderTest(tree)
    for tag_number in (0, 1, 0, 1):
        assert crane.get(manifest_path(8, tag_number)).status_code == 200
    assert crane.tree.repositories.tag_entries == 2
    new = republish(tree, 8, 3)
    crane.tick()
    assert crane.get(manifest_path(8)).headers["Docker-Content-Digest"] == new   # polls first
    cache = crane.tree.repositories
    assert {key: entry.version for key, entry in cache.items.items()} == {
        tag_key(repository_name(8), tag_name(8, 0)): NEW_VERSION}             # the new version's entry only
    assert cache.tag_entries == 1 and cache.bytes == cache.items[tag_key(repository_name(8), tag_name(8, 0))].memory


def test_a_version_without_tag_documents_is_loaded_whole(tree):
    """Versions published before tag documents existed."""
    shutil.rmtree(tag_file(tree, 3).parent)
    crane = CraneUnderTest(tree)
    response = crane.get(manifest_path(3))
    assert response.headers["Docker-Content-Digest"] == listed_digest(tree, 3)
    assert list(crane.tree.repositories.items) == [repository_name(3)]


def _other_tags_document(root: Path, number: int) -> bytes:
    """A well-formed tag document of the same repository and version, for another tag (and digest)."""
    return tag_file(root, number, 1).read_bytes()


def _other_repositorys_document(root: Path, number: int) -> bytes:
    document = json.loads(tag_file(root, number + 1, 0).read_bytes())
    return fmt.dump_repository({**document, "tags": {tag_name(number, 0): document["tags"][tag_name(number + 1, 0)]}})


@pytest.mark.parametrize("damage", [lambda root, number: b'{"format": 2, "na',
                                    _other_tags_document, _other_repositorys_document],
                         ids=["cut short", "another tag", "another repository"])
def test_a_tag_document_that_does_not_fit_is_not_used(tree, damage):
    path = tag_file(tree, 4)
    data = damage(tree, 4)
    path.unlink()
    path.write_bytes(data)
    crane = CraneUnderTest(tree)
    response = crane.get(manifest_path(4))
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == listed_digest(tree, 4)
    assert response.data == fmt.blob_path(tree, listed_digest(tree, 4)).read_bytes()


def test_a_tag_document_of_another_version_than_the_journal_names_is_not_used(tree):
    crane = CraneUnderTest(tree)
    new = republish(tree, 5, 3)
    crane.tick()                                                  # the journal names NEW_VERSION
    stale = tag_file(tree, 5, 0, NEW_VERSION)
    stale.unlink()
    shutil.copy(tag_file(tree, 5, 0, VERSION), stale)            # what the previous version said
    assert crane.get(manifest_path(5)).headers["Docker-Content-Digest"] == new


def test_a_tag_is_not_served_from_its_document_once_the_journal_says_the_repository_was_removed(tree):
    """As a host whose view of the directory is stale (NFS) would still find the files."""
    crane = CraneUnderTest(tree)
    with journal_lock(tree):
        append_change(tree, Change(repository_name(6), None, None, catalog=True))
    crane.tick()
    response = crane.get(manifest_path(6))
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"


def test_a_protected_repository_is_not_served_anonymously_from_a_tag_document(tree):
    crane = CraneUnderTest(tree)
    response = crane.get(manifest_path(10))
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_a_scan_of_tags_asked_for_once_does_not_push_a_hot_repository_out(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, 60, 100, manifest_blobs=True)     # ~55 KB of repository.json each
    crane = CraneUnderTest(root, repository_cache_mib=1)
    hot = crane.tree.repository(repository_name(1))               # held whole, as a pull leaves it
    cold = [number for number in range(2, 60) if number % 10]
    for number in cold:
        assert crane.get(manifest_path(number)).status_code == 200
    assert list(crane.tree.repositories.items) == [repository_name(1)]
    for number in cold:                                           # each asked for again: its tag's entry
        assert crane.get(manifest_path(number)).status_code == 200
    assert crane.tree.repositories.items.get(repository_name(1)) is hot   # a few KiB each: all fit
    assert crane.tree.repositories.tag_entries == len(cold)
    assert crane.tree.repositories.bytes <= 1024 * 1024
