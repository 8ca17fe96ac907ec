"""Format 2 around the versions: the journal line of each change, the catalog files, the tree's FORMAT."""
from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from pulp_registry import published_format as fmt
from pulp_registry.publish import PublishError, prepare_published_tree, publish_repository, unpublish_repository
from tests.publish.sample_content import make_repository, push_image
from tests.publish.test_publish import catalog, journal, published_root
from tests.republish.format1_tree import write_format1_tree


def set_protected(services: Any, repo: dict[str, Any], protected: bool) -> None:
    services.db.repositories.update_one({"_id": repo["_id"]}, {"$set": {"protected": protected}})


def test_a_new_tree_is_format_2_with_an_empty_journal_and_catalog(tmp_path):
    root = tmp_path / "published"
    prepare_published_tree(root)

    assert (root / "FORMAT").read_text() == "pulp-registry-published 2\n"
    segment, tree_id = (root / "journal" / "HEAD").read_text().split()
    assert (root / "journal" / f"{int(segment):020d}.log").read_bytes() == b""
    assert (root / "catalog" / "all").read_bytes() == (root / "catalog" / "public").read_bytes() == b""

    prepare_published_tree(root)   # each start-up again: nothing changes
    assert (root / "journal" / "HEAD").read_text().split() == [segment, tree_id]


def test_the_catalog_follows_publishes_protection_changes_and_removals(services):
    public = make_repository(services, "zeta/public")
    private = make_repository(services, "alpha/private", protected=True)
    push_image(services, public, "v1", [b"public layer"])
    publish_repository(services, public["_id"])
    first = publish_repository(services, private["_id"])
    assert catalog(services, "all") == ["alpha/private", "zeta/public"]
    assert catalog(services, "public") == ["zeta/public"]
    assert journal(services)[-1] == {"name": "alpha/private", "version": first["version"], "protected": True,
                                     "catalog": True}

    set_protected(services, private, False)
    unprotected = publish_repository(services, private["_id"])
    assert catalog(services, "public") == ["alpha/private", "zeta/public"]
    assert journal(services)[-1] == {"name": "alpha/private", "version": unprotected["version"],
                                     "protected": False, "catalog": True}

    set_protected(services, public, True)
    publish_repository(services, public["_id"])
    assert catalog(services, "all") == ["alpha/private", "zeta/public"]
    assert catalog(services, "public") == ["alpha/private"]

    again = publish_repository(services, public["_id"])   # nothing about the name changed
    assert journal(services)[-1] == {"name": "zeta/public", "version": again["version"], "protected": True,
                                     "catalog": False}

    unpublish_repository(services.settings, "alpha/private")
    assert catalog(services, "all") == ["zeta/public"]
    assert catalog(services, "public") == []
    assert journal(services)[-1] == {"name": "alpha/private", "version": None, "protected": None, "catalog": True}
    assert len(journal(services)) == 6


def test_a_publish_into_a_format_1_tree_fails_and_says_to_run_republish_all(services):
    root = published_root(services)
    write_format1_tree(root, {"old/app": False})
    repo = make_repository(services, "new/app")

    with pytest.raises(PublishError, match=r"format 1.*run `pulp-registry republish --all`"):
        publish_repository(services, repo["_id"])
    assert not fmt.repository_dir(root, "new/app").exists()
    assert (root / "FORMAT").read_text() == "pulp-registry-published 1\n"
    prepare_published_tree(root)   # start-up leaves the old tree for the upgrade
    assert (root / "FORMAT").read_text() == "pulp-registry-published 1\n"


def test_removing_a_repository_from_a_format_1_tree_removes_it_without_a_journal(services):
    root = published_root(services)
    write_format1_tree(root, {"old/app": False, "other/app": True})

    unpublish_repository(services.settings, "old/app")

    assert not fmt.repository_dir(root, "old/app").exists()
    assert not (root / fmt.CATALOG_DIR).exists()
    assert list((root / fmt.JOURNAL_DIR).glob("*.log")) == []


def _publish_each(services: Any, repo_ids: list[str], rounds: int, start: Any, results: Any) -> None:
    start.wait()
    for _round in range(rounds):
        for repo_id in repo_ids:
            results.put((repo_id, publish_repository(services, repo_id)["version"]))


def test_two_processes_publishing_at_once_journal_every_change_once_in_whole_lines(services):
    groups: list[list[dict[str, Any]]] = [[], []]
    for number in range(8):
        repo = make_repository(services, f"group{number % 2}/app-{number}", protected=number % 4 == 0)
        push_image(services, repo, "v1", [f"layer {number}".encode()])
        groups[number % 2].append(repo)
    prepare_published_tree(published_root(services))
    fork = multiprocessing.get_context("fork")
    start, results = fork.Event(), fork.Queue()
    rounds = 5
    children = [fork.Process(target=_publish_each, args=(services, [repo["_id"] for repo in group], rounds,
                                                         start, results)) for group in groups]
    for child in children:
        child.start()
    start.set()
    published = [results.get(timeout=120) for _ in range(8 * rounds)]
    for child in children:
        child.join(timeout=120)
        assert child.exitcode == 0

    names = {repo["_id"]: repo["name"] for group in groups for repo in group}
    lines = journal(services)   # every line parses: no two appends interleaved
    assert sorted((line["name"], line["version"]) for line in lines) == \
        sorted((names[repo_id], version) for repo_id, version in published)
    assert len(lines) == 8 * rounds
    assert sum(line["catalog"] for line in lines) == 8   # each name was new once
    assert catalog(services, "all") == sorted(names.values())
    assert catalog(services, "public") == sorted(repo["name"] for group in groups for repo in group
                                                 if not repo["protected"])


def test_every_journal_and_catalog_file_is_readable_by_everyone(services):
    repo = make_repository(services, "modes")
    publish_repository(services, repo["_id"])
    root: Path = published_root(services)
    for path in [*(root / "journal").iterdir(), *(root / "catalog").iterdir()]:
        if path.name != ".lock":
            assert path.stat().st_mode & 0o444 == 0o444, path
