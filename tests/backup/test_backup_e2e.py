"""Backup, wipe, restore, pull byte for byte: real processes, skopeo, and Crane serving during the backup.

Two ``pulp-registry dev`` share nothing: each keeps its metadata in a MongoDB of
its own (``tests/mongo_server.py`` serves mongomock over the wire protocol, so
``pulp-registry backup``/``restore``/``verify``, run as separate processes, reach
the same database). A pull loop against the first Crane runs through the whole
backup and must see no failure.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.clients import MANIFEST_ACCEPT, crane_pull_dir, skopeo_push
from tests.images import build_oci_layout, dir_manifest_bytes, layout_manifest, layout_manifest_bytes, manifest_digests
from tests.mongo_server import MongoWireServer
from tests.servers import DevServer, console_script, run_dev_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(not (shutil.which("skopeo") and shutil.which("umoci")),
                                 reason="skopeo and umoci are needed (scripts/test.sh installs them)")]

IMAGES = {"ops/web": [{"srv/index.html": b"<h1>backup me</h1>\n" * 200}, {"srv/big.bin": os.urandom(300_000)}],
          "ops/db": [{"var/db/data": os.urandom(200_000)}]}


def pulp_registry(data_dir: Path, mongo: MongoWireServer, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "CRANE_"))}
    env.update({"PULP_REGISTRY_DATA_DIR": str(data_dir), "PULP_REGISTRY_MONGO_URL": mongo.url})
    result = subprocess.run([console_script("pulp-registry"), *args], env=env, capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"pulp-registry {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class PullLoop:
    """Threads pulling every image from Crane (manifest by tag, then each blob) until stopped."""

    def __init__(self, server: DevServer, images: dict[str, dict[str, Any]], threads: int = 3) -> None:
        self.server = server
        self.images = images
        self.failures: list[str] = []
        self.pulls: list[float] = []   # when each full pull ended
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _pull(self, name: str, expected: dict[str, Any]) -> None:
        base = f"{self.server.registry_url}/v2/{name}"
        response = requests.get(f"{base}/manifests/v1", headers={"Accept": MANIFEST_ACCEPT}, timeout=30)
        if response.status_code != 200 or response.content != expected["raw"]:
            self.failures.append(f"manifest {name}:v1 -> {response.status_code}")
            return
        for digest in expected["blobs"]:
            blob = requests.get(f"{base}/blobs/{digest}", timeout=30)
            if blob.status_code != 200 or "sha256:" + hashlib.sha256(blob.content).hexdigest() != digest:
                self.failures.append(f"blob {name}@{digest} -> {blob.status_code}")
                return
        self.pulls.append(time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, expected in self.images.items():
                try:
                    self._pull(name, expected)
                except requests.RequestException as exc:
                    self.failures.append(f"{name}: {exc!r}")

    def __enter__(self) -> PullLoop:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def test_backup_under_pull_load_then_wipe_restore_and_pull_byte_for_byte(tmp_path):
    started = time.monotonic()
    pushed: dict[str, dict[str, Any]] = {}
    backup_dir = tmp_path / "backup"
    (tmp_path / "first").mkdir()
    with MongoWireServer() as first_db, run_dev_server(tmp_path / "first", extra_args=["--mongo-url", first_db.url]) \
            as first:
        for name, layers in IMAGES.items():
            layout = build_oci_layout(tmp_path / "layouts", "v1", layers=layers)
            digest, manifest = layout_manifest(layout, "v1")
            skopeo_push(first, f"oci:{layout}:v1", name, "v1")
            pushed[name] = {"digest": digest, "raw": layout_manifest_bytes(layout, "v1"), "layout": layout,
                            "blobs": [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]}

        with PullLoop(first, pushed) as loop:
            while not loop.pulls and not loop.failures:
                time.sleep(0.05)
            backup_started = time.monotonic()
            backed = pulp_registry(first.data_dir, first_db, "backup", str(backup_dir))
            backup_ended = time.monotonic()
            time.sleep(0.5)
        assert not loop.failures, loop.failures[:10]
        during = [when for when in loop.pulls if backup_started <= when <= backup_ended]
        assert len(during) >= 3, f"only {len(during)} pulls during the backup"
        assert "read-only mode on (reason: backup)" in backed.stdout
        assert (backup_dir / "backup.json").exists()

    # Wipe: the first install (its database server and data dir) is gone.
    shutil.rmtree(tmp_path / "first")
    with MongoWireServer() as second_db:
        second_data = tmp_path / "second" / "data"
        restored = pulp_registry(second_data, second_db, "restore", str(backup_dir))
        assert "published 2 repositories" in restored.stdout

        with run_dev_server(tmp_path / "second", extra_args=["--mongo-url", second_db.url]) as second:
            (tmp_path / "pulled").mkdir()
            (tmp_path / "by-digest").mkdir()
            for name, image in pushed.items():
                pulled = crane_pull_dir(second, name, "v1", tmp_path / "pulled" / name.replace("/", "-"))
                assert dir_manifest_bytes(pulled) == image["raw"]
                assert manifest_digests(pulled) == manifest_digests(image["layout"], "v1")
                assert crane_pull_dir(second, name, image["digest"], tmp_path / "by-digest" / name.replace("/", "-"))

            verified = pulp_registry(second_data, second_db, "verify")
            assert verified.stdout.strip().endswith("no problems")

            layer = pushed["ops/web"]["blobs"][-1]
            stored = second_data / "content" / "blobs" / "sha256" / layer[7:9] / layer[7:]
            with open(stored, "r+b") as damaged:
                damaged.write(b"\0\0\0\0")
            broken = pulp_registry(second_data, second_db, "verify", check=False)
            assert broken.returncode == 1
            assert broken.stdout.splitlines()[0].startswith(f"{layer} (blob): damaged")
    print(f"backup e2e took {time.monotonic() - started:.1f} s (backup {backup_ended - backup_started:.1f} s)")
