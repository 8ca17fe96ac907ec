"""Crane holds only the repositories it is asked for, within its budget, and follows the journal.

Trees are written by ``tests/crane/scale_tree.py`` (what publishes leave, with
the publisher's journal and catalog writes) so that large trees are quick to
make; ``switch_current`` is the publisher's switch.
"""
from __future__ import annotations

import json
import os
import subprocess
import weakref
from pathlib import Path

import pytest

from crane.published import PublishedFormatError, PublishedTree
from crane.repository_cache import key_name, tag_key
from pulp_registry import published_format as fmt
from pulp_registry.published_journal import HEAD_FILE, journal_dir, read_head, segment_path
from tests.crane.conftest import CraneUnderTest, error_code
from tests.crane.scale_tree import (VERSION, repository_document, repository_name, switch_current, tag_name,
                                    write_published_tree, write_version)
from tests.crane.test_crane_tokens import ISSUER, SERVICE, Issuer, bearer, write_public_key
from tests.servers import console_script, free_port

NEW_VERSION = "20261202T120000.000000Z-0000beef"


def manifest_path(number: int, tag_number: int = 0) -> str:
    return f"/v2/{repository_name(number)}/manifests/{tag_name(number, tag_number)}"


def republish(root: Path, number: int, tags: int, version: str = NEW_VERSION, salt: str = "-new") -> str:
    """Publish repository ``number`` again with new digests; the digest its first tag now names."""
    document = repository_document(root, number, tags, salt=salt, manifest_blobs=True)
    write_version(root, document, version)
    switch_current(root, document["name"], version)
    return document["tags"][tag_name(number, 0)]


def digest_of(crane: CraneUnderTest, path: str) -> str:
    response = crane.get(path)
    assert response.status_code == 200, response.data
    return response.headers["Docker-Content-Digest"]


def pulled_digest(crane: CraneUnderTest, path: str) -> str:
    """The digest ``path`` names, asked for as a pull does: by tag (which reads only that tag's document),
    then by that digest, which loads the repository whole into the cache."""
    digest = digest_of(crane, path)
    assert digest_of(crane, path.rpartition("/")[0] + "/" + digest) == digest
    return digest


def test_serving_one_manifest_of_two_thousand_repositories_loads_only_that_one(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, 2000, 2, manifest_blobs=True)
    crane = CraneUnderTest(root)
    assert len(crane.tree.repositories) == 0          # opening the tree loads nothing
    assert crane.get(manifest_path(1234, 1)).status_code == 200
    assert len(crane.tree.repositories.items) == 0    # a first request by tag reads that tag's document only
    assert crane.get(manifest_path(1234, 1)).status_code == 200
    assert list(crane.tree.repositories.items) == [tag_key(repository_name(1234), tag_name(1234, 1))]
    pulled_digest(crane, manifest_path(1234, 0))      # by digest: loaded whole
    assert list(crane.tree.repositories.items) == [tag_key(repository_name(1234), tag_name(1234, 1)),
                                                   repository_name(1234)]


def test_the_cache_never_exceeds_its_budget_while_many_repositories_are_pulled(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, 60, 100, manifest_blobs=True)   # ~55 KB of repository.json each
    crane = CraneUnderTest(root, repository_cache_mib=1)
    cache = crane.tree.repositories
    held = set()
    for round_number in range(2):
        for number in range(1, 60):
            if number % 10 == 0:
                continue
            pulled_digest(crane, manifest_path(number, round_number))
            assert cache.bytes <= cache.max_bytes == 1024 * 1024
            assert cache.bytes == sum(repository.memory for repository in cache.items.values())
            held.add(len(cache))
    assert 1 < max(held) < 50                            # some were kept, most were dropped


def test_nothing_keeps_a_dropped_repository_alive_not_even_the_fast_paths_answers(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, 60, 100, manifest_blobs=True)
    crane = CraneUnderTest(root, repository_cache_mib=1)
    pulled_digest(crane, manifest_path(1))
    assert crane.head(manifest_path(1)).status_code == 200
    first = weakref.ref(crane.tree.repository(repository_name(1)))
    assert len(first().prepared) == 2                   # the fast path's answers, kept on the repository
    for number in range(2, 60):
        if number % 10:
            pulled_digest(crane, manifest_path(number))
    assert repository_name(1) not in crane.tree.repositories.items
    assert first() is None


def test_a_publish_is_served_after_the_poll_and_evicts_only_that_repository(tree: Path):
    crane = CraneUnderTest(tree)
    old = pulled_digest(crane, manifest_path(1))
    for number in (2, 3):
        digest_of(crane, manifest_path(number))
    others = {number: crane.tree.repository(repository_name(number)) for number in (2, 3)}
    new = republish(tree, 1, 3)
    assert digest_of(crane, manifest_path(1)) == old     # within the poll interval: the version it had
    crane.tick()
    assert digest_of(crane, manifest_path(1)) == new
    assert crane.tree.repository(repository_name(1)).version == NEW_VERSION
    for number, repository in others.items():
        assert crane.tree.repository(repository_name(number)) is repository
    assert crane.tree.reloads == 1


def test_the_journal_names_the_version_even_where_current_still_looks_old(tree: Path):
    """On NFS ``current`` can look stale for the attribute-cache time; the journal's version cannot."""
    crane = CraneUnderTest(tree)
    digest_of(crane, manifest_path(1))
    new = republish(tree, 1, 3)
    repo_dir = fmt.repository_dir(tree, repository_name(1))
    os.symlink(f"{fmt.VERSIONS_DIR}/{VERSION}", repo_dir / "old")
    os.replace(repo_dir / "old", repo_dir / fmt.CURRENT_LINK)   # what a stale view of the link shows
    crane.tick()
    assert digest_of(crane, manifest_path(1)) == new


def tags_entry_digest(crane: CraneUnderTest, path: str) -> str:
    """The digest ``path`` names, asked for twice by tag: held as that tag's entry, the repository not whole."""
    digest = digest_of(crane, path)
    assert digest_of(crane, path) == digest
    assert key_name(next(reversed(crane.tree.repositories.items))) == path.split("/manifests/")[0][len("/v2/"):]
    return digest


@pytest.mark.parametrize("held", [pulled_digest, tags_entry_digest], ids=["whole", "tag's entry"])
def test_a_switch_without_its_journal_line_is_found_by_the_link_check(tree: Path, held):
    """A publisher killed between its switch of ``current`` and its journal append."""
    crane = CraneUnderTest(tree)
    old = held(crane, manifest_path(1))
    held(crane, manifest_path(2))
    unchanged = dict(crane.tree.repositories.items)
    document = repository_document(tree, 1, 3, salt="-killed", manifest_blobs=True)
    write_version(tree, document, NEW_VERSION)
    repo_dir = fmt.repository_dir(tree, document["name"])
    os.symlink(f"{fmt.VERSIONS_DIR}/{NEW_VERSION}", repo_dir / "current.new")
    os.replace(repo_dir / "current.new", repo_dir / fmt.CURRENT_LINK)
    assert digest_of(crane, manifest_path(1)) == old
    crane.tick()
    assert digest_of(crane, manifest_path(1)) == document["tags"][tag_name(1, 0)]
    cache = crane.tree.repositories
    assert {key: entry for key, entry in cache.items.items() if key_name(key) == repository_name(2)} == {
        key: entry for key, entry in unchanged.items() if key_name(key) == repository_name(2)}   # still held
    assert cache.bytes == sum(entry.memory for entry in [*cache.items.values(), *cache.stale.values()])
    assert cache.tag_entries == sum(1 for key in cache.items if key != key_name(key))


def test_a_removed_repository_answers_404_after_the_poll(publisher, crane):
    repo = publisher.repository("gone/app")
    publisher.image(repo, "latest")
    publisher.publish(repo)
    assert crane.get("/v2/gone/app/manifests/latest").status_code == 200
    publisher.unpublish(repo)
    crane.tick()
    response = crane.get("/v2/gone/app/manifests/latest")
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"
    assert len(crane.tree.repositories) == 0


def test_a_journal_segment_deleted_under_a_running_crane_drops_the_cache_and_serves_new_versions(tree: Path):
    crane = CraneUnderTest(tree)
    pulled_digest(crane, manifest_path(1))
    pulled_digest(crane, manifest_path(2))
    assert len(crane.tree.repositories) == 2
    segment, tree_id = read_head(tree)
    # The writers moved on to the next segment and the one this Crane was reading is deleted unread.
    new = republish(tree, 1, 3)
    segment_path(tree, segment + 1).touch()
    (journal_dir(tree) / HEAD_FILE).write_text(f"{segment + 1} {tree_id}\n")
    segment_path(tree, segment).unlink()
    crane.tick()
    assert digest_of(crane, manifest_path(1)) == new
    assert {key_name(key) for key in crane.tree.repositories.items} == {repository_name(1)}   # the rest forgotten


def publish_during_the_first_read(crane: CraneUnderTest, tree: Path) -> list[str]:
    """Make the next document Crane parses race with a publish of repository 1, polled before it is cached;
    the list gets the digest that publish gives its first tag."""
    parse = crane.tree._parse
    new: list[str] = []

    def publish_while_reading(*args):
        loaded = parse(*args)
        if not new:
            new.append(republish(tree, 1, 3))
            crane.tree.refresh_on_miss()
        return loaded

    crane.tree._parse = publish_while_reading
    return new


def test_a_load_racing_with_a_publish_never_keeps_the_older_version(tree: Path):
    crane = CraneUnderTest(tree)
    new = publish_during_the_first_read(crane, tree)
    assert crane.tree.repository(repository_name(1)).version == NEW_VERSION   # read again: the new one
    assert digest_of(crane, manifest_path(1)) == new[0]


def test_a_tags_entry_racing_with_a_publish_is_not_kept(tree: Path):
    crane = CraneUnderTest(tree)
    old = digest_of(crane, manifest_path(1))            # the tag's document, read once: its next read caches
    new = publish_during_the_first_read(crane, tree)
    assert digest_of(crane, manifest_path(1)) == old    # read before the publish landed: answered, not kept
    assert crane.tree.repositories.items == {}
    assert digest_of(crane, manifest_path(1)) == new[0]


# --- the catalog, paged from the catalog files ---------------------------------------------------

def catalog_pages(crane: CraneUnderTest, n: int, headers: dict[str, str] | None = None) -> list[list[str]]:
    pages, url = [], f"/v2/_catalog?n={n}"
    while url:
        response = crane.get(url, headers=headers or {})
        assert response.status_code == 200, response.data
        pages.append(json.loads(response.data)["repositories"])
        link = response.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    return pages


@pytest.fixture
def issuer(tmp_path: Path) -> tuple[Issuer, dict[str, str]]:
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    settings = {"token_public_key": write_public_key(key, tmp_path / "issuer.pem"), "token_issuer": ISSUER,
                "token_service": SERVICE}
    return Issuer(key, "ES256"), settings


def test_the_catalog_pages_public_names_and_a_tokens_grants_without_loading_repositories(tree: Path, issuer):
    token_issuer, settings = issuer
    crane = CraneUnderTest(tree, **settings)
    names = sorted(repository_name(number) for number in range(50))
    public = [name for name in names if int(name.rsplit("-", 1)[1]) % 10]
    pages = catalog_pages(crane, 7)
    assert [len(page) for page in pages[:-1]] == [7] * (len(pages) - 1)
    assert sum(pages, []) == public
    assert len(crane.tree.repositories) == 0
    response = crane.get(f"/v2/_catalog?n=3&last={public[4]}")
    assert json.loads(response.data)["repositories"] == public[5:8]
    assert response.headers["Link"] == f'</v2/_catalog?last={public[7].replace("/", "%2F")}&n=3>; rel="next"'

    everything = bearer(token_issuer.token([{"type": "registry", "name": "catalog", "actions": ["*"]}]))
    assert sum(catalog_pages(crane, 9, everything), []) == names
    secret = repository_name(20)
    one = bearer(token_issuer.pull(secret, "never/published"))
    assert sum(catalog_pages(crane, 4, one), []) == sorted(public + [secret])
    closed = CraneUnderTest(tree, anonymous_pull=False, **settings)
    assert sum(catalog_pages(closed, 1, one), []) == [secret]


def test_a_new_repository_joins_the_catalog_after_the_poll(tree: Path):
    crane = CraneUnderTest(tree)
    before = json.loads(crane.get("/v2/_catalog").data)["repositories"]
    document = repository_document(tree, 51, 2)
    write_version(tree, document, NEW_VERSION)
    switch_current(tree, document["name"], NEW_VERSION)
    assert json.loads(crane.get("/v2/_catalog").data)["repositories"] == before
    crane.tick()
    assert json.loads(crane.get("/v2/_catalog").data)["repositories"] == sorted(before + [document["name"]])


# --- formats -----------------------------------------------------------------------------------

def test_a_format_1_tree_is_refused_naming_the_republish_command(tmp_path: Path):
    (tmp_path / fmt.FORMAT_FILE).write_text("pulp-registry-published 1\n")
    with pytest.raises(PublishedFormatError, match="pulp-registry republish --all"):
        PublishedTree(tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRANE_")}
    result = subprocess.run([console_script("crane"), "--data-dir", str(tmp_path), "--bind",
                             f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `pulp-registry republish --all`" in lines[0], result.stderr
