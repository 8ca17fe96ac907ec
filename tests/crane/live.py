"""Crane as users run it (``crane`` under gunicorn) and content loaded from OCI layouts, for tests."""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

from pulp_registry import content
from pulp_registry.publish import prepare_published_tree
from tests.images import layout_blob, layout_descriptor
from tests.servers import console_script, free_port, stop_process, wait_for_http


def store_layout(services: Any, repo: dict[str, Any], layout: Path, tag: str) -> str:
    """Store the image or index tagged ``tag`` in an OCI layout (children first, as a client pushes)."""
    def store(digest: str, media_type: str, reference: str) -> None:
        raw = layout_blob(layout, digest)
        doc = json.loads(raw)
        for child in doc.get("manifests", []):
            store(child["digest"], child["mediaType"], child["digest"])
        for blob in [doc["config"], *doc["layers"]] if "config" in doc else []:
            content.store_blob(services, repo, layout_blob(layout, blob["digest"]))
        content.store_manifest(services, repo, raw, media_type, reference)

    descriptor = layout_descriptor(layout, tag)
    store(descriptor["digest"], descriptor["mediaType"], tag)
    return descriptor["digest"]


@contextlib.contextmanager
def running_crane(published_dir: str, log: Path, **settings: str) -> Iterator[str]:
    """``crane`` under gunicorn (2 workers) on a free port; yields ``127.0.0.1:PORT``; stopped after."""
    prepare_published_tree(Path(published_dir))   # as `pulp-registry api` does at start (crane refuses no tree)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRANE_")}
    env.update({f"CRANE_{key.upper()}": value for key, value in settings.items()})
    env["CRANE_POLL_INTERVAL"] = "0.2"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([console_script("crane"), "--data-dir", published_dir,
                                    "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                                   stdout=log_file, stderr=subprocess.STDOUT, env=env)

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"crane exited with {process.returncode}:\n{log.read_text()}")

    try:
        wait_for_http(f"http://127.0.0.1:{port}/", deadline_s=30, alive=alive)
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)
