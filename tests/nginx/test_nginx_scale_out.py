"""Two Crane processes behind one nginx upstream: one is SIGKILLed under load, no pull fails (issue 11, point 14).

The other half of point 14 (two worker processes share one queue and still run
one task at a time per repository) is proven with real worker processes by
tests/integration/test_worker_processes.py.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.nginx.stack import Stack
from tests.nginx.test_nginx_push_pull import ACCEPT, admin_client, push_small_image, wait_pullable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

THREADS = 4
BEFORE_KILL_S, AFTER_KILL_S = 2.0, 3.0


def upstreams_in(log: Path, start: int, end: int | None = None) -> list[tuple[int, str]]:
    """(status, upstream addresses) of the access log's lines between byte offsets ``start`` and ``end``."""
    lines = log.read_bytes()[start:end].decode(errors="replace").splitlines()
    assert all('upstream="' in line for line in lines), lines[:3]
    return [(int(match.group(1)), match.group(2)) for line in lines
            if (match := re.search(r'" (\d{3}) \d+ \S+ upstream="([^"]*)"', line))]


def test_a_pull_loop_sees_no_failure_when_one_of_two_cranes_is_killed(stack: Stack):
    name = "nginx/scale"
    digest = push_small_image(admin_client(stack), name, "v1")
    wait_pullable(stack, name, "v1", digest)
    manifest = requests.get(f"{stack.pull_url}/v2/{name}/manifests/{digest}", headers=ACCEPT,
                            verify=stack.ca_file, timeout=10).json()
    blob = manifest["layers"][0]["digest"]
    log_start = stack.access_log.stat().st_size

    stop = threading.Event()
    failures: list[str] = []
    done = [0] * THREADS

    def pull_loop(number: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                # By tag (never cached: every one reaches a Crane), then the blob (Crane, then X-Accel-Redirect).
                by_tag = session.get(f"{stack.pull_url}/v2/{name}/manifests/v1", headers=ACCEPT,
                                     verify=stack.ca_file, timeout=10)
                got = session.get(f"{stack.pull_url}/v2/{name}/blobs/{blob}", verify=stack.ca_file, timeout=10)
                if by_tag.status_code != 200 or by_tag.headers.get("Docker-Content-Digest") != digest:
                    failures.append(f"manifest: {by_tag.status_code} {by_tag.text[:200]}")
                elif got.status_code != 200 or got.headers.get("Docker-Content-Digest") != blob:
                    failures.append(f"blob: {got.status_code} {got.text[:200]}")
                else:
                    done[number] += 1
            except requests.RequestException as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=pull_loop, args=(number,), daemon=True) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE_KILL_S)
        before_kill = sum(done)
        killed_at = stack.access_log.stat().st_size
        stack.kill("crane0")
        time.sleep(AFTER_KILL_S)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    after_kill = sum(done) - before_kill

    assert failures == [], failures[:5]
    assert before_kill >= 10 and after_kill >= 10, (before_kill, after_kill)
    dead, alive = (f"127.0.0.1:{port}" for port in stack.crane_ports)
    # Both Cranes served before the kill; afterwards only the survivor answered (nginx skipped the dead one).
    served_before = {upstream for _, upstream in upstreams_in(stack.access_log, log_start, killed_at)}
    assert {dead, alive} <= served_before
    after = upstreams_in(stack.access_log, killed_at)
    assert after and all(status == 200 for status, _ in after)
    assert all(upstream.split(", ")[-1] == alive for _, upstream in after[THREADS * 2:])
    retried = sum(1 for _, upstream in after if ", " in upstream)
    print(f"pull loop: {before_kill} pulls before the kill, {after_kill} after, {retried} requests retried")

    stack.start_crane(0)   # back to two for any later test
