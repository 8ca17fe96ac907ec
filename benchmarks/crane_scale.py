"""Crane at scale: start-up, memory, request rate and publish delay on a large published tree.

    python benchmarks/crane_scale.py [--repositories 100000] [--tags 1000000] [--json out.json]

Writes a published tree (docs/published-format.md) with the generator the
tests use (``tests/crane/scale_tree.py``), plus a tree of 10 repositories,
starts ``crane --workers 2`` on each (127.0.0.1, free ports) and prints issue 12
point 6's figures: time from process start to the first 200 on ``/v2/`` and on
a manifest GET, VmRSS of each gunicorn worker after ``--requests`` random
manifest GETs, manifest GET req/s over ``--paths`` random tags of random
repositories (the hot set) against the same on the 10-repository tree (the
median of ``--rounds``, after ``--warm-up`` seconds whose rate is reported
apart), and the delay from a publish to the first request that serves it.
Not a test: run it by hand; see benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_measure import MANIFEST_ACCEPT  # noqa: E402
from bench_servers import REPO_ROOT, Server, _clean_env, find_tool, process_tree_cpu  # noqa: E402
from tests.crane.scale_tree import (repository_document, repository_name, switch_current, tag_name,  # noqa: E402
                                    write_published_tree, write_version)
from tests.servers import free_port  # noqa: E402

SMALL_REPOSITORIES = 10
WRK_SCRIPT = """\
local paths = {{
{paths}
}}
wrk.headers["Accept"] = "{accept}"
wrk.headers["Connection"] = "keep-alive"
function setup(thread) thread:set("seed", math.random(1, 1000000000)) end
function init(args) math.randomseed(seed) end
function request() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure Crane on a large published tree.")
    parser.add_argument("--repositories", type=int, default=100_000, help="repositories in the tree (100000)")
    parser.add_argument("--tags", type=int, default=1_000_000,
                        help="tags in all, spread evenly over the repositories (1000000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of each Crane (2)")
    parser.add_argument("--repository-cache-mib", type=int, default=0,
                        help="CRANE_REPOSITORY_CACHE_MIB (default: Crane's own default)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="CRANE_POLL_INTERVAL in seconds (1)")
    parser.add_argument("--requests", type=int, default=10_000,
                        help="random manifest GETs before RSS is read (10000)")
    parser.add_argument("--client-threads", type=int, default=8, help="threads of that load (8)")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds of wrk load per tree, split into --rounds (15)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per tree, the trees taking turns (5)")
    parser.add_argument("--warm-up", type=int, default=10,
                        help="seconds of the same load on each tree before the rounds, its rate reported apart (10)")
    parser.add_argument("--paths", type=int, default=10_000,
                        help="distinct manifest paths wrk picks from at random, per tree (10000)")
    parser.add_argument("--connections", type=int, default=32, help="wrk keep-alive connections (32)")
    parser.add_argument("--publishes", type=int, default=5, help="publishes whose delay is measured (5)")
    parser.add_argument("--seed", type=int, default=12, help="random seed of the request spread (12)")
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")
    parser.add_argument("--tmpdir", help="where the trees go (default: the system's temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the trees and Crane's logs")
    args = parser.parse_args(argv)
    if (args.repositories < 1 or args.tags < args.repositories or args.workers < 1 or args.rounds < 1
            or args.warm_up < 1 or args.paths < 1):
        parser.error("--repositories >= 1, --tags >= --repositories, --workers >= 1, --rounds >= 1, "
                     "--warm-up >= 1, --paths >= 1")
    return args


def get(host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, str | None]:
    """One manifest-style GET on a fresh connection: ``(status, Docker-Content-Digest)``."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept": MANIFEST_ACCEPT})
        response = connection.getresponse()
        response.read()
        return response.status, response.getheader("Docker-Content-Digest")
    finally:
        connection.close()


def manifest_path(number: int, tag_number: int) -> str:
    return f"/v2/{repository_name(number)}/manifests/{tag_name(number, tag_number)}"


def public_repository(rng: random.Random, repositories: int) -> int:
    """A random repository the generator did not make protected (it protects every tenth)."""
    while True:
        number = rng.randrange(repositories)
        if number % 10:
            return number


def random_paths(rng: random.Random, repositories: int, tags_per_repository: int, count: int) -> list[str]:
    return [manifest_path(public_repository(rng, repositories), rng.randrange(tags_per_repository))
            for _ in range(count)]


def start_crane(tree: Path, args: argparse.Namespace, workdir: Path, label: str) -> tuple[Server, float]:
    """``crane --workers N`` on ``tree``; returns the server and its ``time.monotonic()`` start."""
    port = free_port()
    env = _clean_env()
    env.update({"CRANE_LOG_LEVEL": "WARNING", "CRANE_POLL_INTERVAL": str(args.poll_interval)})
    if args.repository_cache_mib:
        env["CRANE_REPOSITORY_CACHE_MIB"] = str(args.repository_cache_mib)
    argv = [find_tool("crane"), "--data-dir", str(tree), "--bind", f"127.0.0.1:{port}",
            "--workers", str(args.workers)]
    log_path = workdir / f"crane-{label}.log"
    with log_path.open("wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=workdir, start_new_session=True)
    return Server(f"crane ({label})", process, port, log_path, signal.SIGINT), started


def wait_for_200(server: Server, path: str, deadline_s: float = 300.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        server.check_alive()
        try:
            if get("127.0.0.1", server.port, path, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.label}: no 200 on {path} within {deadline_s}s:\n{server.log_tail()}")
        time.sleep(0.01)


def worker_rss_mib(server: Server) -> list[float]:
    """VmRSS of each gunicorn worker (every process under the master), in MiB."""
    sizes = []
    for pid in sorted(process_tree_cpu(server.process.pid)):
        if pid == server.process.pid:
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
        if match:
            sizes.append(int(match.group(1)) / 1024)
    return sizes


def threaded_load(server: Server, paths: list[str], threads: int) -> dict[str, Any]:
    """GET every path once from ``threads`` keep-alive connections; statuses counted."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    chunks = [paths[index::threads] for index in range(threads)]

    def run(chunk: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        for path in chunk:
            connection.request("GET", path, headers={"Accept": MANIFEST_ACCEPT})
            response = connection.getresponse()
            response.read()
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    started = time.monotonic()
    workers = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    return {"requests": len(paths), "seconds": round(seconds, 2), "requests_per_s": round(len(paths) / seconds),
            "statuses": {str(code): count for code, count in sorted(statuses.items())}}


def wrk_round(server: Server, script: Path, seconds: float, connections: int) -> tuple[float, int]:
    """One wrk run: ``(requests/s, non-2xx/3xx responses + socket errors)``."""
    proc = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script),
                           server.url], capture_output=True, text=True, timeout=seconds + 60)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    if proc.returncode != 0 or not rate:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", proc.stdout)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", proc.stdout)
    return float(rate.group(1)), (int(bad.group(1)) if bad else 0) + (
        sum(int(value) for value in errors.groups()) if errors else 0)


def publish_delay(tree: Path, server: Server, rng: random.Random, repositories: int, tags_per_repository: int,
                  round_number: int) -> float:
    """Rewrite one repository with new digests, switch it as the publisher does, time the first new answer."""
    number = public_repository(rng, repositories)
    path = manifest_path(number, 0)
    old = get("127.0.0.1", server.port, path)[1]
    version = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ") + f"-bench{round_number:03d}"
    document = repository_document(tree, number, tags_per_repository, salt=f"-publish{round_number}",
                                   manifest_blobs=True)
    write_version(tree, document, version)
    switch_current(tree, document["name"], version)
    switched = time.monotonic()
    while True:
        status, digest = get("127.0.0.1", server.port, path)
        if status == 200 and digest != old:
            if digest != document["tags"][tag_name(number, 0)]:
                raise RuntimeError(f"{path}: served {digest}, neither the old nor the new version")
            return time.monotonic() - switched
        if time.monotonic() - switched > 120:
            raise RuntimeError(f"{path}: still the old version 120 s after the publish")
        time.sleep(0.005)


def run(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> dict[str, Any]:
    rng = random.Random(args.seed)
    per_repo = args.tags // args.repositories
    big, small = workdir / "big", workdir / "small"
    started = time.monotonic()
    say(f"writing {args.repositories:,} repositories x {per_repo} tags ({args.repositories * per_repo:,} tags) "
        f"to {big} ...")
    write_published_tree(big, args.repositories, per_repo, manifest_blobs=True)
    write_published_tree(small, SMALL_REPOSITORIES, per_repo, manifest_blobs=True)
    du = subprocess.run(["du", "-sh", str(big)], capture_output=True, text=True).stdout.split("\t")[0]
    say(f"trees written in {time.monotonic() - started:.0f}s ({du} on disk)")

    result: dict[str, Any] = {"tags_per_repository": per_repo, "tree_write_s": round(time.monotonic() - started, 1),
                              "tree_size": du}
    first_path = random_paths(rng, args.repositories, per_repo, 1)[0]
    crane, crane_started = start_crane(big, args, workdir, "big")
    servers.append(crane)
    wait_for_200(crane, "/v2/")
    result["first_v2_s"] = round(time.monotonic() - crane_started, 3)
    wait_for_200(crane, first_path)
    result["first_manifest_s"] = round(time.monotonic() - crane_started, 3)
    say(f"crane started: first 200 on /v2/ after {result['first_v2_s']:.2f}s, on {first_path} after "
        f"{result['first_manifest_s']:.2f}s; workers' RSS {', '.join(f'{m:.0f}' for m in worker_rss_mib(crane))} MiB")
    time.sleep(max(0.0, 2 * args.poll_interval))  # every worker booted and past its first poll
    result["rss_idle_mib"] = [round(m, 1) for m in worker_rss_mib(crane)]

    say(f"{args.requests:,} random manifest GETs from {args.client_threads} threads ...")
    result["load"] = threaded_load(crane, random_paths(rng, args.repositories, per_repo, args.requests),
                                   args.client_threads)
    result["rss_after_load_mib"] = [round(m, 1) for m in worker_rss_mib(crane)]
    say(f"  {result['load']['requests_per_s']:,} req/s, statuses {result['load']['statuses']}; workers' RSS "
        f"{', '.join(f'{m:.0f}' for m in result['rss_after_load_mib'])} MiB")

    small_crane, _ = start_crane(small, args, workdir, "small")
    servers.append(small_crane)
    wait_for_200(small_crane, manifest_path(1, 0))
    scripts = {}
    for label, repositories in (("big", args.repositories), ("small", SMALL_REPOSITORIES)):
        paths = random_paths(rng, repositories, per_repo, args.paths)
        scripts[label] = workdir / f"random-{label}.lua"
        scripts[label].write_text(WRK_SCRIPT.format(paths=",\n".join(f'"{p}"' for p in paths),
                                                    accept=MANIFEST_ACCEPT))
    seconds = max(1, round(args.duration / args.rounds))  # wrk takes whole seconds
    rounds: dict[str, list[float]] = {"big": [], "small": []}
    cpu: dict[str, list[float]] = {"big": [], "small": []}
    bad = 0
    result["rate_warm_up"] = {}
    for label, server in (("big", crane), ("small", small_crane)):
        result["rate_warm_up"][label], errors = wrk_round(server, scripts[label], args.warm_up, args.connections)
        bad += errors
    say(f"  warm-up ({args.warm_up}s, caches cold at its start): {result['rate_warm_up']['big']:,.0f} req/s on "
        f"{args.repositories:,} repositories, {result['rate_warm_up']['small']:,.0f} on {SMALL_REPOSITORIES}")
    say(f"manifest GET req/s, wrk -c{args.connections}, {args.rounds} x {seconds:g}s per tree, taking turns ...")
    for _ in range(args.rounds):
        for label, server in (("big", crane), ("small", small_crane)):
            wrk_round(server, scripts[label], 1.0, args.connections)  # warm-up, not counted
            cpu_before = sum(process_tree_cpu(server.process.pid).values())
            rate, errors = wrk_round(server, scripts[label], seconds, args.connections)
            cpu_after = sum(process_tree_cpu(server.process.pid).values())
            rounds[label].append(rate)
            cpu[label].append((cpu_after - cpu_before) / (rate * seconds) * 1e6)
            bad += errors
    result["rate_rounds"] = rounds
    result["rate_big"] = statistics.median(rounds["big"])
    result["rate_small"] = statistics.median(rounds["small"])
    result["rate_ratio"] = round(result["rate_big"] / result["rate_small"], 3)
    result["rate_errors"] = bad
    result["cpu_us_per_request"] = {label: round(statistics.median(values)) for label, values in cpu.items()}
    say(f"  {result['rate_big']:,.0f} req/s on {args.repositories:,} repositories, {result['rate_small']:,.0f} on "
        f"{SMALL_REPOSITORIES}: ratio {result['rate_ratio']:.2f}; Crane CPU per request "
        f"{result['cpu_us_per_request']['big']} / {result['cpu_us_per_request']['small']} us"
        + (f"; WARNING {bad} errors" if bad else ""))
    small_crane.stop()
    result["rss_after_rate_mib"] = [round(m, 1) for m in worker_rss_mib(crane)]

    delays = []
    for number in range(args.publishes):
        time.sleep(rng.uniform(0, args.poll_interval))  # publishes fall anywhere in the poll cycle
        delays.append(round(publish_delay(big, crane, rng, args.repositories, per_repo, number), 3))
        say(f"publish {number + 1}: first request serving the new version {delays[-1]:.3f}s after the switch")
    result["publish_delays_s"] = delays
    result["rss_end_mib"] = [round(m, 1) for m in worker_rss_mib(crane)]
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    return result


def print_table(report: dict[str, Any], args: argparse.Namespace) -> None:
    r = report["results"]
    mib = lambda values: ", ".join(f"{value:,.0f}" for value in values) or "-"  # noqa: E731
    delays = r["publish_delays_s"]
    rows = [("metric", "value", "issue 12 target"),
            ("tree", f"{args.repositories:,} repositories, {args.repositories * r['tags_per_repository']:,} tags", ""),
            ("first 200 on /v2/ after process start", f"{r['first_v2_s']:.2f} s", "<= 1 s"),
            ("first 200 on a manifest GET", f"{r['first_manifest_s']:.2f} s", "<= 1 s"),
            ("RSS per worker, idle (MiB)", mib(r["rss_idle_mib"]), ""),
            (f"RSS per worker after {args.requests:,} random GETs (MiB)", mib(r["rss_after_load_mib"]), "<= 150 MiB"),
            ("RSS per worker at the end (MiB)", mib(r["rss_end_mib"]), ""),
            (f"manifest GET req/s, {args.paths:,} random tags of {args.repositories:,} repos", f"{r['rate_big']:,.0f}",
             ""),
            (f"manifest GET req/s, {args.paths:,} random tags of {SMALL_REPOSITORIES} repos",
             f"{r['rate_small']:,.0f}", ""),
            ("ratio large/small", f"{r['rate_ratio']:.2f}", "> 0.8"),
            (f"the same in the first {args.warm_up}s (cold caches, not counted)",
             f"{r['rate_warm_up']['big']:,.0f} / {r['rate_warm_up']['small']:,.0f} = "
             f"{r['rate_warm_up']['big'] / r['rate_warm_up']['small']:.2f}", ""),
            ("publish -> first new answer, median (s)", f"{statistics.median(delays):.3f}", "<= poll_interval"),
            ("publish -> first new answer, max (s)", f"{max(delays):.3f}", "")]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    print()
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if number == 0:
            print("  ".join("-" * width for width in widths))
    print(f"\nrounds (req/s): large {', '.join(f'{v:,.0f}' for v in r['rate_rounds']['big'])}; small "
          f"{', '.join(f'{v:,.0f}' for v in r['rate_rounds']['small'])}; {r['rate_errors']} wrk errors. "
          f"Random-GET load: {r['load']['requests_per_s']:,} req/s, statuses {r['load']['statuses']}. "
          f"Publish delays: {delays}. Load average {report['load_average_at_start']:.2f} -> "
          f"{report['load_average_at_end']:.2f} on {report['cpus']} CPUs.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    find_tool("crane")
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=REPO_ROOT).stdout.strip()
    info = {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit, "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0],
            "settings": {key: value for key, value in vars(args).items() if key not in ("json_path", "keep")}}
    say(f"crane scale benchmark: {args.repositories:,} repositories, {args.tags:,} tags, {args.workers} workers, "
        f"poll interval {args.poll_interval:g}s; commit {commit}")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="crane-scale-", dir=args.tmpdir))
    servers: list[Server] = []
    try:
        results = run(args, workdir, servers)
        for server in servers:
            server.stop()
        report = {**info, "results": results, "load_average_at_end": os.getloadavg()[0]}
        print_table(report, args)
        if args.json_path:
            Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
            say(f"wrote {args.json_path}")
    except KeyboardInterrupt:
        say("interrupted; stopping Crane")
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not stop the clean-up
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for server in servers:
            server.stop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            say(f"removing {workdir} ...")
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
