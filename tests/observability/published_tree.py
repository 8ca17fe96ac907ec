"""A small published tree (one public repository, one image) for observability tests and benchmarks.

Run: ``python -m tests.observability.published_tree DIR`` prints the manifest URL path.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pulp_registry.config import Settings
from pulp_registry.services import build_services
from tests.crane.content import Publisher


def make_tree(data_dir: Path, name: str = "obs/app", tag: str = "1.0") -> tuple[str, str]:
    """Publish ``name:tag`` under ``data_dir``; the published dir and the image's manifest digest."""
    settings = Settings(data_dir=str(data_dir), mongo_url="mongomock://", broker_url="memory://", bcrypt_rounds=4)
    services = build_services(settings)
    publisher = Publisher(services)
    repo = publisher.repository(name)
    image = publisher.image(repo, tag)
    publisher.publish(repo)
    return settings.published_dir, image.digest


if __name__ == "__main__":
    published, digest = make_tree(Path(sys.argv[1]))
    print(published, digest)
