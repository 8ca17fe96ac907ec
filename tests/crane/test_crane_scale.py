"""Metadata of 1,000 repositories and 10,000 tags loads quickly and stays small in memory.

The tree is written directly in the published format (docs/published-format.md)
-- what 1,000 publishes would leave -- and loaded by a fresh Python process, so
the figures are Crane's alone. Only memory is asserted (generously); the load
time is printed, never asserted (no timed assertions in tests).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.crane.scale_tree import write_published_tree

REPOSITORIES = 1000
TAGS_PER_REPOSITORY = 10
MAX_RSS_GROWTH_MB = 200

LOAD_AND_MEASURE = r"""
import json, sys, time
import crane.published

def rss_kib():
    with open("/proc/self/statm") as statm:
        import os
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

before = rss_kib()
start = time.perf_counter()
tree = crane.published.PublishedTree(sys.argv[1])
seconds = time.perf_counter() - start
after = rss_kib()
repositories = tree.snapshot.repositories
print(json.dumps({"seconds": seconds, "rss_growth_kib": after - before,
                  "repositories": len(repositories),
                  "tags": sum(len(r.tags) for r in repositories.values()),
                  "manifests": sum(len(r.manifests) for r in repositories.values()),
                  "blobs": sum(len(r.blobs) for r in repositories.values()),
                  "referred": sum(len(r.referrers) for r in repositories.values())}))
"""


def test_ten_thousand_tags_in_a_thousand_repositories_load_small(tmp_path: Path):
    root = tmp_path / "published"
    write_published_tree(root, REPOSITORIES, TAGS_PER_REPOSITORY)
    result = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(root)], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    print(f"\nloaded {figures['repositories']} repositories, {figures['tags']} tags, "
          f"{figures['manifests']} manifests, {figures['blobs']} blobs in {figures['seconds']:.3f} s; "
          f"RSS grew {figures['rss_growth_kib'] / 1024:.1f} MiB")
    assert figures["repositories"] == REPOSITORIES
    assert figures["tags"] == REPOSITORIES * TAGS_PER_REPOSITORY
    assert figures["referred"] == REPOSITORIES          # one signed tag per repository, indexed at load
    assert figures["rss_growth_kib"] < MAX_RSS_GROWTH_MB * 1024
