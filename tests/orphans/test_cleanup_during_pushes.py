"""Orphan clean-up while pushes go on never takes content a push is using (issue 9).

Pusher threads push images over the admin ``/v2/`` (the Flask test client, as
``docker push`` does: blob sessions, then the manifest) while the test runs
clean-up over and over with the default grace period. Half of every image's
layers are bytes that an old, deleted repository left behind as orphans older
than the grace period: the pushes re-use them while clean-up is removing them.
Afterwards every pushed manifest pulls with its digest from the admin side and
from Crane, and every stored file hashes to its digest.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from pulp_registry import oci, orphans, repositories
from pulp_registry.publish import publish_repository
from tests.crane.conftest import CraneUnderTest
from tests.orphans.helpers import age_everything, gone, no_progress
from tests.publish.sample_content import make_repository, push_image
from tests.registry.conftest import Pusher, descriptor, manifest_bytes, sha256

PUSH_SECONDS = 3.0
PUSHERS = 3
OLD_LAYERS = 60


def old_layer(number: int) -> bytes:
    return f"layer an old repository left behind #{number}".encode() * 50


def push_in_a_loop(app, auth, name: str, worker: int, stop: threading.Event, pushed: list[tuple[str, str, bytes]],
                   failures: list[BaseException]) -> None:
    """Push one-config, two-layer images (one layer an old orphan's bytes) until told to stop."""
    pusher = Pusher(app.test_client(), auth)
    number = 0
    try:
        while not stop.is_set() and number < OLD_LAYERS // PUSHERS:
            config = json.dumps({"architecture": "amd64", "os": "linux", "pusher": worker, "n": number}).encode()
            layers = [old_layer(worker + PUSHERS * number), f"fresh layer {worker}/{number}".encode()]
            for data in [config] + layers:
                pusher.blob(name, data)
            raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                                  "config": descriptor(oci.OCI_CONFIG, config),
                                  "layers": [descriptor(oci.OCI_LAYER_GZIP, layer) for layer in layers]})
            tag = f"w{worker}-{number}"
            response = pusher.manifest(name, tag, raw, oci.OCI_MANIFEST)
            assert response.status_code == 201, response.get_data(as_text=True)
            pushed.append((name, tag, raw))
            number += 1
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)


def leave_old_orphans(services: Any) -> None:
    """A deleted repository whose layers are orphans older than the grace period."""
    repo = make_repository(services, "old/app")
    for number in range(0, OLD_LAYERS, 4):
        push_image(services, repo, f"v{number}", [old_layer(n) for n in range(number, number + 4)])
    publish_repository(services, repo["_id"])
    repositories.delete_repository(services, repo["_id"])
    age_everything(services)
    assert orphans.find_orphans(services)["count"] > OLD_LAYERS


def assert_pulls(client, auth, crane: CraneUnderTest, pushed: list[tuple[str, str, bytes]]) -> None:
    for name, tag, raw in pushed:
        digest = sha256(raw)
        for pull, headers in ((client, auth), (crane.client, {})):
            accept = {"Accept": oci.OCI_MANIFEST}
            for reference in (tag, digest):
                manifest = pull.get(f"/v2/{name}/manifests/{reference}", headers={**headers, **accept})
                assert manifest.status_code == 200, (name, reference, manifest.get_data(as_text=True))
                assert manifest.data == raw
            document = json.loads(raw)
            for blob in [document["config"]] + document["layers"]:
                response = pull.get(f"/v2/{name}/blobs/{blob['digest']}", headers=headers)
                assert response.status_code == 200, (name, blob["digest"])
                assert sha256(response.data) == blob["digest"]


def assert_every_stored_file_hashes_to_its_digest(services: Any) -> None:
    for stored in services.storage.iter_content():
        path = services.storage.path(stored.digest)
        assert "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest() == stored.digest


def test_cleanup_during_pushes_never_takes_what_a_push_uses_and_grace_zero_later_takes_the_rest(
        app, client, auth, services):
    leave_old_orphans(services)
    stop = threading.Event()
    pushed: list[tuple[str, str, bytes]] = []
    failures: list[BaseException] = []
    names = [f"push/app{worker}" for worker in range(PUSHERS)]
    threads = [threading.Thread(target=push_in_a_loop, args=(app, auth, names[worker], worker, stop, pushed, failures))
               for worker in range(PUSHERS)]
    for thread in threads:
        thread.start()
    cleanups: list[dict[str, int]] = []
    deadline = time.monotonic() + PUSH_SECONDS
    try:
        while time.monotonic() < deadline and any(thread.is_alive() for thread in threads):
            cleanups.append(orphans.cleanup_orphans(services, no_progress))   # the default grace period
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures
    assert len(cleanups) >= 2 and sum(result["blobs"] for result in cleanups) > 0
    assert len(pushed) >= PUSHERS

    for name in names:     # publishes asked for by pushes may have waited on each other (eager Celery)
        publish_repository(services, repositories.find_repository_by_name(services.db, name)["_id"])
    crane = CraneUnderTest(Path(services.settings.published_dir))
    assert_pulls(client, auth, crane, pushed)
    assert_every_stored_file_hashes_to_its_digest(services)

    # Pushes are over: a repository deleted now leaves orphans that a clean-up with 0 removes at once.
    dropped = names[0]
    dropped_layers = [json.loads(raw)["layers"][1]["digest"] for name, _tag, raw in pushed if name == dropped]
    repositories.delete_repository(services, repositories.find_repository_by_name(services.db, dropped)["_id"])
    result = orphans.cleanup_orphans(services, no_progress, grace_period=0)
    assert result["manifests"] == len(dropped_layers) and result["bytes_freed"] > 0
    assert all(gone(services, digest) for digest in dropped_layers)
    assert orphans.find_orphans(services, grace_period=0)["count"] == 0

    crane.tick()
    kept = [entry for entry in pushed if entry[0] != dropped]
    assert_pulls(client, auth, crane, kept)
    assert crane.get(f"/v2/{dropped}/manifests/{pushed[0][1]}").status_code == 404
    assert_every_stored_file_hashes_to_its_digest(services)
