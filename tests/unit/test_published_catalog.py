"""The catalog files: pages found by binary search agree with a sorted list, updates keep order."""
from __future__ import annotations

import random

import pytest

from crane.listing import paginate
from pulp_registry.published_catalog import (CatalogIndex, catalog_path, rebuild_catalog, update_catalog)
from pulp_registry.published_format import CATALOG_ALL, CATALOG_PUBLIC


def names_in(root, which):
    return CatalogIndex(catalog_path(root, which)).page(None, None)[0]


def test_pages_match_a_sorted_list_for_every_last_and_n(tmp_path):
    rng = random.Random(7)
    names = sorted({f"team{rng.randrange(30)}/svc-{rng.randrange(10_000)}" for _ in range(700)})
    rebuild_catalog(tmp_path, [(name, True) for name in names])
    index = CatalogIndex(catalog_path(tmp_path, CATALOG_ALL))
    probes = [None, "", "a", "team1", "zzz"] + rng.sample(names, 40) + [name + "x" for name in rng.sample(names, 20)]
    for last in probes:
        for n in (None, 0, 1, 3, 50, 1000):
            assert index.page(last, n) == paginate(names, n, last), (last, n)


def test_membership(tmp_path):
    rebuild_catalog(tmp_path, [("a/b", True), ("a/bc", False), ("b", True)])
    index = CatalogIndex(catalog_path(tmp_path, CATALOG_ALL))
    assert "a/b" in index and "a/bc" in index and "b" in index
    assert "a" not in index and "a/" not in index and "bb" not in index and "a/bcd" not in index
    assert "a/bc" not in CatalogIndex(catalog_path(tmp_path, CATALOG_PUBLIC))


def test_updates_add_remove_and_reprotect_and_say_when_nothing_changed(tmp_path):
    assert update_catalog(tmp_path, "m/app", present=True, public=True)
    assert not update_catalog(tmp_path, "m/app", present=True, public=True)
    assert update_catalog(tmp_path, "a/app", present=True, public=False)
    assert names_in(tmp_path, CATALOG_ALL) == ["a/app", "m/app"]
    assert names_in(tmp_path, CATALOG_PUBLIC) == ["m/app"]
    assert update_catalog(tmp_path, "m/app", present=True, public=False)
    assert names_in(tmp_path, CATALOG_PUBLIC) == []
    assert update_catalog(tmp_path, "a/app", present=False, public=False)
    assert names_in(tmp_path, CATALOG_ALL) == ["m/app"]


def test_an_index_keeps_reading_the_version_it_opened(tmp_path):
    rebuild_catalog(tmp_path, [("one", True)])
    index = CatalogIndex(catalog_path(tmp_path, CATALOG_ALL))
    rebuild_catalog(tmp_path, [("two", True)])
    assert index.page(None, None) == (["one"], False)
    assert CatalogIndex(catalog_path(tmp_path, CATALOG_ALL)).page(None, None) == (["two"], False)


@pytest.mark.parametrize("content", [None, b""])
def test_a_missing_or_empty_file_is_an_empty_catalog(tmp_path, content):
    path = catalog_path(tmp_path, CATALOG_ALL)
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    assert CatalogIndex(path).page(None, 10) == ([], False)
    assert "x" not in CatalogIndex(path)
