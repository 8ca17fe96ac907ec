"""A PATCH racing the PUT that finishes the same session can never poison the stored blob.

Two API processes share the content storage (a filesystem), exactly like two
gunicorn workers: one finishes an upload session while the other keeps
appending to it. Whatever the outcome of that finish, the blob stored under the
digest must hash to the digest, and a later genuine push of the same bytes to
another repository must work.
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import time
from pathlib import Path

from pulp_registry.registry_errors import RegistryError
from pulp_registry.storage import FilesystemStorage
from tests.registry.conftest import sha256

OCTET = {"Content-Type": "application/octet-stream"}
ROUNDS = 50
BLOB_SIZE = 256 * 1024
ROUNDS_DEADLINE_S = 25.0


def _append_until_gone(storage_path: str, upload_id: str, started, stop) -> None:
    """The other API worker: PATCH requests that stream extra bytes slowly, until the session is gone.

    A slow client's PATCH holds the session file open while its body trickles in;
    each request ends by itself after a few milliseconds, as requests do.
    """
    storage = FilesystemStorage(storage_path)

    def slow_body():
        for _ in range(20):
            yield b"poison!" * 16
            time.sleep(0.0005)

    deadline = time.monotonic() + 10
    pause = random.Random(upload_id)
    started.set()
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(pause.random() * 0.01)  # sometimes the finish gets in first, sometimes a PATCH does
        try:
            storage.upload_append(upload_id, slow_body())
        except (RegistryError, OSError):
            pass  # the session is gone (or refused the chunk): keep trying until told to stop


def _stored_digest(services, digest: str) -> str | None:
    path = services.storage.local_path(digest)
    if path is None:
        return None
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_patch_racing_the_finishing_put_never_poisons_the_stored_blob(client, auth, services):
    fork = multiprocessing.get_context("fork")
    storage_path = services.settings.storage_path
    started_at = time.monotonic()
    outcomes: dict[int, int] = {}
    for round_number in range(ROUNDS):
        data = os.urandom(BLOB_SIZE)
        digest = sha256(data)
        half = BLOB_SIZE // 2
        start = client.post("/v2/race/app/blobs/uploads/", headers=auth)
        assert start.status_code == 202
        location = start.headers["Location"]
        upload_id = start.headers["Docker-Upload-UUID"]
        first = client.patch(location, data=data[:half],
                             headers={**auth, **OCTET, "Content-Range": f"0-{half - 1}"})
        assert first.status_code == 202, first.get_data(as_text=True)

        started, stop = fork.Event(), fork.Event()
        appender = fork.Process(target=_append_until_gone, args=(storage_path, upload_id, started, stop))
        appender.start()
        try:
            assert started.wait(10), "the appending process did not start"
            # The genuine client finishes with the rest of the blob; its digest is that of the genuine bytes.
            finish = client.put(f"{location}?digest={digest}", data=data[half:], headers={**auth, **OCTET})
        finally:
            stop.set()
            appender.join(10)
        outcomes[finish.status_code] = outcomes.get(finish.status_code, 0) + 1
        assert finish.status_code in (201, 400, 404, 416), finish.get_data(as_text=True)
        if finish.status_code == 201:
            assert _stored_digest(services, digest) == digest, f"round {round_number}: stored blob poisoned"

        # Whatever happened, a genuine monolithic push of the same bytes elsewhere works ...
        again = client.post(f"/v2/race/other/blobs/uploads/?digest={digest}", data=data, headers={**auth, **OCTET})
        assert again.status_code == 201, f"round {round_number} (finish {finish.status_code} {finish.get_data(as_text=True)}): {again.get_data(as_text=True)}"
        # ... and what is stored (and served) under the digest is exactly the genuine bytes.
        assert _stored_digest(services, digest) == digest, f"round {round_number}: stored blob poisoned"
        served = client.get(f"/v2/race/other/blobs/{digest}", headers=auth)
        assert served.status_code == 200 and hashlib.sha256(served.data).hexdigest() == digest.split(":")[1]
        if time.monotonic() - started_at > ROUNDS_DEADLINE_S:
            break
    assert sum(outcomes.values()) >= 10, outcomes
    print(outcomes)
