"""Metadata of 1,000 repositories and 10,000 tags loads quickly and stays small in memory.

The tree is written directly in the published format (docs/published-format.md)
-- what 1,000 publishes would leave -- and loaded by a fresh Python process, so
the figures are Crane's alone. Only memory is asserted (generously); the load
time is printed, never asserted (no timed assertions in tests).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from pulp_registry import published_format as fmt

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


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def write_published_tree(root: Path, repositories: int, tags_per_repository: int) -> None:
    """A published tree as publishes leave it: per repository one version, ``current`` linking to it.

    Every tag names its own image manifest with a config and a layer; one tag in
    ten also has a signature referring to it (so referrers are built too).
    """
    (root / fmt.BLOBS_DIR).mkdir(parents=True)
    (root / fmt.FORMAT_FILE).write_text(fmt.FORMAT_TEXT)
    for number in range(repositories):
        name = f"team{number % 25}/service-{number}"
        tags, manifests, blobs = {}, {}, {}
        for tag_number in range(tags_per_repository):
            tag = f"v1.{tag_number}.{number}"
            digest = fake_digest(f"{name}:{tag}")
            config, layer = fake_digest(f"{name}:{tag}:config"), fake_digest(f"{name}:{tag}:layer")
            tags[tag] = digest
            manifests[digest] = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": 1021,
                                 "artifact_type": None,
                                 "config_media_type": "application/vnd.oci.image.config.v1+json",
                                 "subject": None, "annotations": None, "platforms": None}
            blobs[config], blobs[layer] = 1480, 31_415_926
            if tag_number == 0:
                signature = fake_digest(f"{name}:{tag}:signature")
                manifests[signature] = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": 700,
                                        "artifact_type": "application/vnd.dev.cosign.artifact.sig.v1+json",
                                        "config_media_type": "application/vnd.oci.empty.v1+json",
                                        "subject": digest, "annotations": {"created": "2026-01-01"},
                                        "platforms": None}
        version = "20261125T170000.000000Z-0000abcd"
        repo_dir = fmt.repository_dir(root, name)
        (repo_dir / fmt.VERSIONS_DIR / version).mkdir(parents=True)
        (repo_dir / fmt.VERSIONS_DIR / version / fmt.REPOSITORY_JSON).write_text(json.dumps({
            "format": fmt.FORMAT_VERSION, "name": name, "repo_id": name.replace("/", "-"),
            "protected": number % 10 == 0, "published": "2026-11-25T17:00:00Z",
            "tags": tags, "manifests": manifests, "blobs": blobs}))
        os.symlink(f"{fmt.VERSIONS_DIR}/{version}", repo_dir / fmt.CURRENT_LINK)
    (root / fmt.GENERATION_FILE).write_text("1\n")


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
