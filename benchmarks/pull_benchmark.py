"""Pull benchmark: Crane against Debian's Docker distribution registry on this machine.

    python benchmarks/pull_benchmark.py [--workers N] [--duration S] [--connections C] [--json out.json]

In one run: builds the same content into both registries (no network), starts
Crane (gunicorn, N workers), distribution (``GOMAXPROCS=N``) and a bare Flask app
(gunicorn, N workers) on 127.0.0.1, measures the pull side with wrk, the
``httpload`` tool beside this file (HEAD: wrk cannot count HEAD responses),
curl and skopeo, prints each figure for both with the ratio and issue 3's
targets, and stops everything it started. Not a test: run it by hand; see
benchmarks/README.md for how to read it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402

from bench_content import (BIG_BLOB_SIZE, TAG_COUNT, Repository, build_content, load_into_crane,  # noqa: E402
                           push_to_distribution)
from bench_measure import MANIFEST_ACCEPT, LoadSettings, blob_download, request_rates, skopeo_pull  # noqa: E402
from bench_servers import (REPO_ROOT, Server, find_tool, start_bare_flask, start_crane,  # noqa: E402
                           start_distribution)

ACCEPT = (("Accept", MANIFEST_ACCEPT),)
#: key, label, method, path (formatted with the content's digests), headers, forced tool, target, bare Flask too
RATE_METRICS: list[tuple[str, str, str, str, tuple, str | None, float | None, bool]] = [
    ("manifest_get_tag", "manifest GET by tag", "GET", "/v2/bench/app/manifests/latest", ACCEPT, None, 2.5, True),
    ("manifest_get_digest", "manifest GET by digest", "GET", "/v2/bench/app/manifests/{app_digest}", ACCEPT, None,
     2.5, True),
    ("manifest_head_tag", "manifest HEAD by tag", "HEAD", "/v2/bench/app/manifests/latest", ACCEPT, "httpload",
     2.5, True),
    ("blob_head", "blob HEAD", "HEAD", "/v2/bench/app/blobs/{app_layer}", (), "httpload", 2.5, False),
    ("tags_list", f"tags list ({TAG_COUNT:,} tags)", "GET", "/v2/bench/tags/tags/list", (), None, None, False),
    ("manifest_get_tag_httpload", "manifest GET by tag", "GET", "/v2/bench/app/manifests/latest", ACCEPT,
     "httpload", None, True),
]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Compare Crane's pull side with Docker distribution on 127.0.0.1.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="gunicorn workers for Crane and bare Flask, GOMAXPROCS for distribution (default: cores)")
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of load per request-rate measurement, split into --rounds (10)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds on fresh connections per measurement; the figure is their median (5)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections of the load tool (32)")
    parser.add_argument("--client-threads", type=int, default=1, help="wrk -t / httpload processes (1)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each measurement (1)")
    parser.add_argument("--load-tool", choices=["auto", "wrk", "httpload"], default="auto",
                        help="GET load tool: wrk when installed (auto), or httpload for every metric")
    parser.add_argument("--blob-runs", type=int, default=5, help="downloads per 100 MiB blob GET figure (5)")
    parser.add_argument("--parallel-downloads", type=int, default=4, help="simultaneous downloads (4)")
    parser.add_argument("--pull-runs", type=int, default=11, help="skopeo pulls per image after a warm-up (11)")
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")
    parser.add_argument("--tmpdir", help="where the temporary content goes (default: the system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (servers' logs)")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.connections < args.client_threads or args.duration <= 0 or args.rounds < 1:
        parser.error("--workers >= 1, --duration > 0, --rounds >= 1 and --connections >= --client-threads")
    if args.load_tool == "auto":
        args.load_tool = "wrk" if shutil.which("wrk") else "httpload"
    return args


def verify(server: Server, repos: dict[str, Repository], bare: bool = False) -> None:
    """Both registries must answer the same bytes before their speed is compared."""
    app = repos["bench/app"].images[0]
    headers = {"Accept": MANIFEST_ACCEPT}
    checks = [("GET", f"/v2/bench/app/manifests/{ref}", headers) for ref in ("latest", app.digest)]
    checks.append(("HEAD", "/v2/bench/app/manifests/latest", headers))
    if not bare:
        big = repos["bench/big"].images[0]
        checks += [("HEAD", f"/v2/bench/app/blobs/{app.layer_digests()[0]}", {}),
                   ("HEAD", f"/v2/bench/big/blobs/{big.layer_digests()[0]}", {}),
                   ("GET", "/v2/bench/tags/tags/list", {})]
    for method, path, request_headers in checks:
        response = requests.request(method, server.url + path, headers=request_headers, timeout=30)
        problem = None
        if response.status_code != 200:
            problem = f"status {response.status_code}: {response.text[:200]}"
        elif "/manifests/" in path:
            if response.headers.get("Docker-Content-Digest") != app.digest:
                problem = f"Docker-Content-Digest {response.headers.get('Docker-Content-Digest')}, not {app.digest}"
            elif response.headers.get("Content-Length") != str(len(app.manifest)):
                problem = f"Content-Length {response.headers.get('Content-Length')}, not {len(app.manifest)}"
            elif method == "GET" and response.content != app.manifest:
                problem = "manifest bytes differ from what was pushed"
        elif path.endswith("/tags/list") and len(response.json().get("tags", [])) != TAG_COUNT:
            problem = f"{len(response.json().get('tags', []))} tags, not {TAG_COUNT}"
        elif method == "HEAD" and "Content-Length" not in response.headers:
            problem = "no Content-Length"
        if problem:
            raise RuntimeError(f"{server.label}: {method} {path}: {problem}")


def ratio(crane: float | None, other: float | None, lower_is_better: bool = False) -> float | None:
    if not crane or not other:
        return None
    return other / crane if lower_is_better else crane / other


def run(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> dict[str, Any]:
    started = time.monotonic()
    repos = {repo.name: repo for repo in build_content(workdir / "content", say)}

    distribution = start_distribution(workdir / "distribution-root", args.workers, workdir)
    servers.append(distribution)
    distribution.wait_ready()
    push_to_distribution(distribution.url, list(repos.values()), say)

    published = load_into_crane(workdir / "crane-data", list(repos.values()), say)
    crane = start_crane(published, args.workers, workdir)
    servers.append(crane)
    app = repos["bench/app"].images[0]
    manifest_file = workdir / "bare-manifest.json"
    manifest_file.write_bytes(app.manifest)
    bare = start_bare_flask(manifest_file, app.media_type, args.workers, workdir)
    servers.append(bare)
    for server in (crane, bare):
        server.wait_ready()
    for server in (crane, distribution):
        verify(server, repos)
    verify(bare, repos, bare=True)
    say(f"content ready in {time.monotonic() - started:.0f}s; servers: crane {crane.url}, "
        f"distribution {distribution.url}, bare Flask {bare.url}")

    load = LoadSettings(args.load_tool, args.client_threads, args.connections, args.duration, args.warmup,
                        args.rounds)
    values = {"app_digest": app.digest, "app_layer": app.layer_digests()[0]}
    results: dict[str, Any] = {}
    for key, label, method, path, headers, tool, target, with_bare in RATE_METRICS:
        tool = tool or load.tool
        if key == "manifest_get_tag_httpload" and load.tool == "httpload":
            continue  # the same figure as manifest GET by tag
        servers_here = {"crane": crane, "distribution": distribution, **({"bare_flask": bare} if with_bare else {})}
        say(f"{label} [{tool}] ...")
        measured = request_rates(servers_here, path.format(**values), method, headers, load, tool, say)
        results[key] = {"label": label, "unit": "req/s", "tool": tool, "target": target, **measured}

    big_path = f"/v2/bench/big/blobs/{repos['bench/big'].images[0].layer_digests()[0]}"
    pair = {"crane": crane, "distribution": distribution}
    say("100 MiB blob GET: crane and distribution, taking turns ...")
    downloads = blob_download(pair, big_path, BIG_BLOB_SIZE, args.blob_runs, args.parallel_downloads)
    for mode, label in (("single", "blob GET 100 MiB, 1 stream"),
                        ("parallel", f"blob GET 100 MiB, {args.parallel_downloads} streams")):
        results[f"blob_get_{mode}"] = {"label": label, "unit": "MB/s", "tool": "curl", "target": 1.0,
                                       **{name: {"value": downloads[name][f"{mode}_mb_s"],
                                                 "runs": downloads[name][f"{mode}_runs"]} for name in downloads}}

    for key, label, reference in (("pull_small", "skopeo pull, small image", "bench/app:latest"),
                                  ("pull_big", "skopeo pull, 100 MiB image", "bench/big:latest")):
        say(f"{label}: crane and distribution, taking turns ...")
        pulled = skopeo_pull(pair, reference, args.pull_runs, workdir)
        results[key] = {"label": label, "unit": "s", "tool": "skopeo", "target": 1.0, "lower_is_better": True,
                        **{name: {"value": pulled[name]["seconds"], "runs": pulled[name]["runs"],
                                  "skopeo_cpu_s": pulled[name]["skopeo_cpu_s"]} for name in pulled}}

    for entry in results.values():
        value: Callable[[str], float | None] = lambda name: (entry[name].get("requests_per_s", entry[name].get(
            "value")) if name in entry else None)
        entry["ratio"] = ratio(value("crane"), value("distribution"), entry.get("lower_is_better", False))
        entry["bare_ratio"] = ratio(value("bare_flask"), value("distribution")) if "bare_flask" in entry else None
        cpu = {name: entry[name].get("server_cpu_ms_per_1000") for name in ("crane", "distribution")}
        entry["cpu_ratio"] = cpu["distribution"] / cpu["crane"] if cpu["crane"] and cpu["distribution"] else None
        entry["met"] = None if entry["target"] is None or entry["ratio"] is None else entry["ratio"] >= entry["target"]
    return {"results": results, "elapsed_s": round(time.monotonic() - started, 1)}


def _figure(entry: dict[str, Any], name: str) -> str:
    if name not in entry:
        return "-"
    data = entry[name]
    number = data.get("requests_per_s", data.get("value"))
    return f"{number:,.3f}" if entry["unit"] == "s" else f"{number:,.0f}"


def print_table(report: dict[str, Any]) -> None:
    head = ("metric", "unit", "tool", "Crane", "distribution", "Crane/dist", "bare Flask", "Flask/dist",
            "target", "met", "CPU/req dist/Crane")
    rows = [head]
    for entry in report["results"].values():
        rows.append((entry["label"], entry["unit"], entry["tool"], _figure(entry, "crane"),
                     _figure(entry, "distribution"), f"{entry['ratio']:.2f}x" if entry["ratio"] else "-",
                     _figure(entry, "bare_flask"), f"{entry['bare_ratio']:.2f}x" if entry["bare_ratio"] else "-",
                     f">= {entry['target']}x" if entry["target"] else "-",
                     {True: "yes", False: "NO", None: "-"}[entry["met"]],
                     f"{entry['cpu_ratio']:.1f}x" if entry.get("cpu_ratio") else "-"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(head))]
    print()
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(width) if column < 3 else cell.rjust(width)
                        for column, (cell, width) in enumerate(zip(row, widths))))
        if number == 0:
            print("  ".join("-" * width for width in widths))
    print("\nRatios: Crane's figure over distribution's; for pull times distribution's time over Crane's,"
          " so above 1 means Crane is faster everywhere.\nCPU/req: server CPU per request of distribution over"
          " Crane's (how many times cheaper a Crane request is; steadier than req/s on a busy machine).")
    for entry in report["results"].values():
        if entry["unit"] == "s":
            print(f"{entry['label']}: skopeo's own CPU per pull {entry['crane']['skopeo_cpu_s']:.3f}s (Crane), "
                  f"{entry['distribution']['skopeo_cpu_s']:.3f}s (distribution); runs: Crane "
                  f"{entry['crane']['runs']}, distribution {entry['distribution']['runs']}")
    print("\nPer request-rate metric: server CPU ms per 1000 requests (lower is cheaper), rounds' req/s,"
          " load-client CPU use; '!' marks a round where one gunicorn worker did over 75% of the work:")
    names = (("crane", "Crane"), ("distribution", "dist"), ("bare_flask", "Flask"))
    for entry in report["results"].values():
        if entry["unit"] != "req/s":
            continue
        print(f"  {entry['label']} [{entry['tool']}]")
        for name, label in names:
            if name not in entry:
                continue
            data = entry[name]
            rounds = " ".join(f"{value:,.0f}" + ("!" if share > 0.75 else "") for value, share in
                              zip(data["rounds_requests_per_s"],
                                  data.get("busiest_worker_share", [0.0] * len(data["rounds_requests_per_s"]))))
            problems = (f"; WARNING {data['non_2xx_3xx']} non-2xx/3xx, {data['socket_errors']} socket errors"
                        if data["non_2xx_3xx"] or data["socket_errors"] else "")
            print(f"    {label:<6} {data.get('server_cpu_ms_per_1000', 0):7.0f} ms/1000   rounds {rounds:<36}"
                  f" client {data['client_cpu_share']:.0%}{problems}")


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    def output(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": output(["git", "rev-parse", "--short", "HEAD"]),
            "git_dirty": bool(output(["git", "status", "--porcelain", "crane", "pulp_registry"])),
            "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0], "python": platform.python_version(),
            "distribution": output([find_tool("docker-registry"), "--version"]),
            "settings": {key: getattr(args, key) for key in (
                "workers", "duration", "rounds", "connections", "client_threads", "warmup", "load_tool",
                "blob_runs", "parallel_downloads", "pull_runs")}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ["crane", "docker-registry", "skopeo", "umoci", "curl"] + (["wrk"] if args.load_tool == "wrk" else []):
        find_tool(tool)
    info = machine_info(args)
    say(f"pull benchmark: {args.workers} workers, {args.connections} connections, {args.duration:g}s per "
        f"measurement, {args.load_tool} -t{args.client_threads}; commit {info['git_commit']}"
        f"{' + local changes' if info['git_dirty'] else ''}")

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="pull-benchmark-", dir=args.tmpdir))
    servers: list[Server] = []
    try:
        report = run(args, workdir, servers)
    except KeyboardInterrupt:
        say("interrupted; stopping the servers")
        return 130
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report = {**info, **report, "load_average_at_end": os.getloadavg()[0]}
    print_table(report)
    print(f"\nLoad average (1 min) at start {info['load_average_at_start']:.2f}, at end "
          f"{report['load_average_at_end']:.2f} on {info['cpus']} CPUs: other work on the machine moves the figures.")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
        say(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
