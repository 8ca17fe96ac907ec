"""The repository cache holds whole repositories and hot tags' entries in one budget, and forgets a
repository's tags with it; its doorkeeper lets only a second miss cache anything."""
from __future__ import annotations

from crane.published_repository import PublishedRepository
from crane.repository_cache import DOOR_MARKS, RepositoryCache, key_name, tag_key

KIB = 1024


def version_of(name: str, version: str = "v1", memory: int = 10 * KIB) -> PublishedRepository:
    return PublishedRepository(name, name, False, version, {}, {}, {}, memory)


def consistent(cache: RepositoryCache) -> bool:
    """What the cache counts matches what it holds."""
    tag_keys = [key for key in cache.items if key != key_name(key)]
    return (cache.bytes == sum(entry.memory for entry in [*cache.items.values(), *cache.stale.values()])
            and cache.tag_entries == len(tag_keys) == sum(map(len, cache.tagged.values()))
            and len(cache) == len(cache.items) - len(tag_keys))


def test_a_repositorys_change_evicts_its_tags_entries_and_nothing_else() -> None:
    cache = RepositoryCache(max_bytes=1024 * KIB)
    for name in ("a/one", "b/two"):
        for tag in ("1.0", "2.0"):
            cache.insert(version_of(name, memory=2 * KIB), tag_key(name, tag))
    cache.insert(version_of("a/one"))
    assert consistent(cache) and cache.tag_entries == 4 and len(cache) == 1
    cache.note_version("a/one", "v2")
    assert list(cache.items) == [tag_key("b/two", "1.0"), tag_key("b/two", "2.0")]
    assert list(cache.stale) == ["a/one"]              # the whole version stays as the fallback, tags do not
    assert consistent(cache)


def test_tags_entries_and_repositories_share_the_budget_least_recently_used_first() -> None:
    cache = RepositoryCache(max_bytes=20 * KIB)
    cache.insert(version_of("a/one"))                                       # 10 KiB
    for number in range(5):                                                 # 5 x 2 KiB
        cache.insert(version_of("b/two", memory=2 * KIB), tag_key("b/two", str(number)))
    assert consistent(cache) and cache.bytes == 20 * KIB
    assert cache.get("a/one") is not None                                   # now the most recently used
    cache.insert(version_of("c/three", memory=4 * KIB), tag_key("c/three", "x"))
    assert list(cache.items) == [tag_key("b/two", "2"), tag_key("b/two", "3"), tag_key("b/two", "4"),
                                 "a/one", tag_key("c/three", "x")]
    assert consistent(cache)
    cache.clear()
    assert consistent(cache) and cache.bytes == 0 and cache.tagged == {}


def test_a_newer_tags_entry_replaces_the_older_and_an_older_one_never_replaces_a_newer() -> None:
    cache = RepositoryCache(max_bytes=1024 * KIB)
    key = tag_key("a/one", "1.0")
    cache.insert(version_of("a/one", "v2"), key)
    assert cache.insert(version_of("a/one", "v1"), key).version == "v2"
    assert cache.insert(version_of("a/one", "v3"), key).version == "v3"
    assert consistent(cache) and cache.tag_entries == 1


def test_the_doorkeeper_lets_a_second_miss_through_and_starts_afresh_after_its_marks() -> None:
    cache = RepositoryCache(max_bytes=KIB)
    assert cache.first_sight("a/one:1.0") is True
    assert cache.first_sight("a/one:1.0") is False
    assert cache.first_sight("a/one:2.0") is True
    marked = 2
    number = 0
    while marked < DOOR_MARKS:                  # other keys (a few share a slot: those are not marked again)
        marked += cache.first_sight(f"scan/{number}:x")
        number += 1
    assert cache.first_sight("a/one:1.0") is True   # forgotten with everything else
