"""A tree of 2,000 repositories and 20,000 tags: Crane opens it without reading it and stays within its budget.

The tree is written directly in the published format (docs/published-format.md)
-- what 2,000 publishes would leave -- and served by a fresh Python process, so
the figures are Crane's alone: opening the tree, then manifests of 600 random
repositories looked up as a request does. Only what is held is asserted (the
cache within its budget, RSS growth generously); times are printed, never
asserted (no timed assertions in tests).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.crane.scale_tree import write_published_tree

REPOSITORIES = 2000
TAGS_PER_REPOSITORY = 10
REQUESTED = 600
CACHE_MIB = 4
MAX_RSS_GROWTH_MB = 60

OPEN_AND_SERVE = r"""
import json, os, random, sys, time
import crane.published
from tests.crane.scale_tree import repository_name, tag_name

def rss_kib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

repositories, tags, requested, cache_mib = (int(value) for value in sys.argv[2:])
before = rss_kib()
start = time.perf_counter()
tree = crane.published.PublishedTree(sys.argv[1], repository_cache_mib=cache_mib)
open_seconds = time.perf_counter() - start
cached_after_open = len(tree.repositories)
rng = random.Random(12)
start = time.perf_counter()
served = referred = 0
for _ in range(requested):
    number = rng.randrange(repositories)
    repository = tree.repository(repository_name(number))
    digest = repository.tags[tag_name(number, rng.randrange(tags))]
    served += repository.manifests.get(digest) is not None
    referred += len(repository.referrers)
serve_seconds = time.perf_counter() - start
print(json.dumps({"open_seconds": open_seconds, "serve_seconds": serve_seconds, "served": served,
                  "referred": referred, "cached_after_open": cached_after_open,
                  "cached": len(tree.repositories), "cache_bytes": tree.repositories.bytes,
                  "cache_max_bytes": tree.repositories.max_bytes, "rss_growth_kib": rss_kib() - before}))
"""


def test_two_thousand_repositories_open_at_once_and_only_what_is_asked_for_is_held(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, REPOSITORIES, TAGS_PER_REPOSITORY)
    result = subprocess.run([sys.executable, "-c", OPEN_AND_SERVE, str(root), str(REPOSITORIES),
                             str(TAGS_PER_REPOSITORY), str(REQUESTED), str(CACHE_MIB)],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    print(f"\nopened {REPOSITORIES} repositories in {figures['open_seconds'] * 1000:.1f} ms; "
          f"{REQUESTED} random lookups in {figures['serve_seconds']:.3f} s; {figures['cached']} held "
          f"({figures['cache_bytes'] / 1024 / 1024:.1f} of {CACHE_MIB} MiB); "
          f"RSS grew {figures['rss_growth_kib'] / 1024:.1f} MiB")
    assert figures["cached_after_open"] == 0
    assert figures["served"] == REQUESTED
    assert figures["referred"] == REQUESTED      # one signed tag per repository, indexed when asked for
    assert 0 < figures["cached"] < REQUESTED
    assert figures["cache_bytes"] <= figures["cache_max_bytes"] == CACHE_MIB * 1024 * 1024
    assert figures["rss_growth_kib"] < MAX_RSS_GROWTH_MB * 1024
