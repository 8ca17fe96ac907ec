"""``pulp-registry worker`` as its own process, with a publish and a sync that can be made slow, for tests.

The worker is the real one (``pulp_registry.cli``, Celery's prefork pool, the
broker and MongoDB named by ``PULP_REGISTRY_*``). The only additions: while the
file ``<data_dir>/slow-<repo id>`` exists, a publish of that repository first
spends that file's number of seconds reporting progress every 0.1 s (each a
safe point), so a test can find it running and kill or cancel it there; while
``<data_dir>/slow-sync`` exists, a sync waits that file's number of seconds
before each blob download, so a test can kill it half way.

Run: ``python -m tests.worker_process [pulp-registry worker arguments]``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from pulp_registry import publish
from pulp_registry.sync import engine

_publish_repository = publish.publish_repository
_fetch_blob = engine._fetch_blob


def slow_path(data_dir: str, repo_id: str) -> Path:
    return Path(data_dir) / f"slow-{repo_id}"


def _slow_publish(services: Any, repo_id: str, progress: Any = None) -> Any:
    marker = slow_path(services.settings.data_dir, repo_id)
    if marker.exists() and progress is not None:
        steps = int(float(marker.read_text() or "1") * 10)
        for step in range(steps):
            progress({"step": "waiting", "done": step, "total": steps})
            time.sleep(0.1)
    return _publish_repository(services, repo_id, progress)


def _slow_fetch_blob(services: Any, *args: Any, **kwargs: Any) -> Any:
    marker = Path(services.settings.data_dir) / "slow-sync"
    if marker.exists():
        time.sleep(float(marker.read_text() or "1"))
    return _fetch_blob(services, *args, **kwargs)


def main() -> None:
    publish.publish_repository = _slow_publish
    engine._fetch_blob = _slow_fetch_blob
    from pulp_registry.cli import cli

    cli.main(["worker", *sys.argv[1:]], prog_name="pulp-registry")


if __name__ == "__main__":
    main()
