"""A published tree as pulp-registry wrote it before format 2 (docs/published-format.md, "Upgrading").

Written by hand, not by the code under test: ``FORMAT`` 1, a ``generation`` token,
and per repository a ``current`` link to a version whose ``repository.json`` is format 1.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from pulp_registry import published_format as fmt

VERSION = "20261101T120000.000000Z-00c0ffee"


def write_format1_tree(root: Path, repositories: dict[str, bool]) -> None:
    """``repositories`` maps each name to whether it is protected; their versions list no content."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "FORMAT").write_text("pulp-registry-published 1\n")
    (root / "generation").write_text("3f2a9c\n")
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    for name, protected in repositories.items():
        repo_dir = root / "repositories" / fmt.encode_name(name)
        version_dir = repo_dir / "versions" / VERSION
        version_dir.mkdir(parents=True)
        (version_dir / "repository.json").write_text(json.dumps({
            "format": 1, "name": name, "repo_id": name.replace("/", "-"), "protected": protected,
            "published": "2026-11-01T12:00:00Z", "tags": {}, "manifests": {}, "blobs": {}}))
        os.symlink(f"versions/{VERSION}", repo_dir / "current")
