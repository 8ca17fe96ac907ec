"""One measurement each: requests/s with wrk or httpload, blob GET MB/s with curl, skopeo pull time.

Every request-rate measurement also records the CPU seconds the server (all
its processes) and the load client spent, so a reader can tell a server that
is slow from a client or a machine that is saturated.
"""
from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from bench_servers import Server
from httpload import run_load

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])

_WRK_SCRIPT = """\
wrk.method = "{method}"
wrk.headers["Connection"] = "keep-alive"
{headers}
done = function(summary, latency, requests)
  io.write(string.format("WRK_JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"connect\\":%d,"
    .. "\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class LoadSettings:
    tool: str            # "wrk" or "httpload"
    client_threads: int  # wrk -t / httpload processes
    connections: int
    duration: float      # seconds of load per measurement, split into rounds
    warmup: float
    rounds: int = 5


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(url: str, method: str, headers: Sequence[tuple[str, str]], load: LoadSettings,
         duration: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        lines = "\n".join(f'wrk.headers["{name}"] = "{value}"' for name, value in headers)
        script.write(_WRK_SCRIPT.format(method=method, headers=lines))
    try:
        cpu_before = _children_cpu()
        proc = subprocess.run(["wrk", f"-t{load.client_threads}", f"-c{load.connections}",
                               f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", script.name, url],
                              capture_output=True, text=True, timeout=duration + 60)
        client_cpu = _children_cpu() - cpu_before
    finally:
        Path(script.name).unlink(missing_ok=True)
    line = next((line for line in proc.stdout.splitlines() if line.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(line.split(" ", 1)[1])
    seconds = raw["duration_us"] / 1e6
    ok = raw["requests"] - raw["status"]
    return {"requests_per_s": ok / seconds if seconds else 0.0, "requests": raw["requests"],
            "non_2xx_3xx": raw["status"], "socket_errors": raw["connect"] + raw["read"] + raw["write"]
            + raw["timeout"], "duration_s": seconds, "client_cpu_s": client_cpu,
            "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000}


def _httpload(url: str, method: str, headers: Sequence[tuple[str, str]], load: LoadSettings,
              duration: float) -> dict:
    result = run_load(url, method, headers, load.client_threads, load.connections, duration)
    return result.as_dict()


def _round(server: Server, run, url: str, method: str, headers: Sequence[tuple[str, str]], load: LoadSettings,
           seconds: float) -> dict:
    server.check_alive()
    before = server.cpu_seconds()
    result = run(url, method, headers, load, seconds)
    after = server.cpu_seconds()
    server.check_alive()
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    result["server_cpu_s"] = sum(spent.values())
    workers = sorted((value for pid, value in spent.items() if pid != server.process.pid), reverse=True)
    if len(workers) > 1 and sum(workers) > 0:
        result["busiest_worker_share"] = round(workers[0] / sum(workers), 2)
    return result


def _summary(rounds: list[dict], tool: str, method: str, path: str, load: LoadSettings) -> dict:
    total = {key: sum(r[key] for r in rounds) for key in ("requests", "non_2xx_3xx", "socket_errors",
                                                          "duration_s", "client_cpu_s", "server_cpu_s")}
    summary = {"tool": tool, "method": method, "path": path,
               "requests_per_s": round(statistics.median(r["requests_per_s"] for r in rounds), 1),
               "rounds_requests_per_s": [round(r["requests_per_s"], 1) for r in rounds],
               **{key: round(value, 3) for key, value in total.items()},
               "client_cpu_share": round(total["client_cpu_s"] / total["duration_s"] / load.client_threads, 3)}
    if total["requests"]:
        summary["server_cpu_ms_per_1000"] = round(1e6 * total["server_cpu_s"] / total["requests"], 1)
    shares = [r["busiest_worker_share"] for r in rounds if "busiest_worker_share" in r]
    if shares:
        summary["busiest_worker_share"] = shares
    if tool == "wrk":
        summary["p50_ms"] = statistics.median(r["p50_ms"] for r in rounds)
        summary["p99_ms"] = statistics.median(r["p99_ms"] for r in rounds)
    return summary


def request_rates(servers: dict[str, Server], path: str, method: str, headers: Sequence[tuple[str, str]],
                  load: LoadSettings, tool: str | None = None,
                  progress: Callable[[str], None] = lambda _message: None) -> dict[str, dict]:
    """Requests/s of ``method path`` on each server: the median of ``load.rounds`` rounds on fresh
    connections after one warm-up, servers taking turns round by round, with server and client CPU.

    Rounds matter for gunicorn: a keep-alive connection stays with the worker that accepted it, and
    now and then one worker accepts most of them; the busiest worker's share of the server's CPU is
    recorded per round so such a round can be seen.
    """
    tool = tool or load.tool
    if tool == "wrk" and method == "HEAD":
        raise ValueError("wrk counts no HEAD responses (it waits for a body); use httpload")
    run = _wrk if tool == "wrk" else _httpload
    round_seconds = max(1, round(load.duration / load.rounds))
    if load.warmup > 0:
        for server in servers.values():
            run(server.url + path, method, headers, load, load.warmup)
    rounds: dict[str, list[dict]] = {name: [] for name in servers}
    for number in range(load.rounds):
        for name, server in servers.items():
            rounds[name].append(_round(server, run, server.url + path, method, headers, load, round_seconds))
        progress(f"  round {number + 1}/{load.rounds}: " + ", ".join(
            f"{server.label} {rounds[name][-1]['requests_per_s']:,.0f}" for name, server in servers.items()))
    return {name: _summary(rounds[name], tool, method, path, load) for name in servers}


def _curl(url: str) -> tuple[int, float]:
    """``(bytes, seconds)`` of one download to /dev/null."""
    proc = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
                           url], capture_output=True, text=True, timeout=600)
    status, size, seconds = proc.stdout.split()
    if proc.returncode != 0 or status != "200":
        raise RuntimeError(f"curl {url}: exit {proc.returncode}, status {status}: {proc.stderr}")
    return int(size), float(seconds)


def blob_download(servers: dict[str, Server], path: str, expected_size: int, runs: int,
                  parallel: int) -> dict[str, dict]:
    """MB/s (10^6 bytes/s) of whole-blob GETs from each server: median of sequential single downloads
    and of batches of ``parallel`` simultaneous downloads (aggregate). Servers take turns, run by run,
    so a change in the machine's load hits both alike."""
    def check(url: str, sizes: list[int]) -> None:
        if any(size != expected_size for size in sizes):
            raise RuntimeError(f"{url}: downloaded {sizes} bytes, expected {expected_size} each")

    single: dict[str, list[float]] = {name: [] for name in servers}
    batches: dict[str, list[float]] = {name: [] for name in servers}
    for server in servers.values():
        _curl(server.url + path)  # warm the page cache and the server
    with ThreadPoolExecutor(parallel) as pool:
        for _ in range(runs):
            for name, server in servers.items():
                url = server.url + path
                size, seconds = _curl(url)
                check(url, [size])
                single[name].append(size / seconds / 1e6)
            for name, server in servers.items():
                url = server.url + path
                started = time.monotonic()
                sizes = [size for size, _ in pool.map(lambda _n: _curl(url), range(parallel))]
                elapsed = time.monotonic() - started
                check(url, sizes)
                batches[name].append(sum(sizes) / elapsed / 1e6)
    for server in servers.values():
        server.check_alive()
    return {name: {"single_mb_s": round(statistics.median(single[name]), 1),
                   "single_runs": [round(v, 1) for v in single[name]],
                   "parallel_mb_s": round(statistics.median(batches[name]), 1),
                   "parallel_runs": [round(v, 1) for v in batches[name]], "parallel": parallel}
            for name in servers}


def skopeo_pull(servers: dict[str, Server], reference: str, runs: int, workdir: Path) -> dict[str, dict]:
    """Median wall time of ``skopeo copy docker://... dir:`` into a fresh directory each run, servers
    taking turns; the first round warms up and is not counted. skopeo's own CPU time is recorded:
    close to the wall time means skopeo (hashing, writing), not the registry, sets the pace."""
    times: dict[str, list[float]] = {name: [] for name in servers}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    for number in range(runs + 1):
        for name, server in servers.items():
            target = workdir / f"pull-{name}-{number}"
            cpu_before = _children_cpu()
            started = time.monotonic()
            proc = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                                   f"docker://{server.host}/{reference}", f"dir:{target}"],
                                  capture_output=True, text=True, timeout=600)
            elapsed = time.monotonic() - started
            skopeo_cpu = _children_cpu() - cpu_before
            shutil.rmtree(target, ignore_errors=True)
            if proc.returncode != 0:
                raise RuntimeError(f"skopeo pull of {reference} from {server.label} failed:\n{proc.stderr}")
            if number:
                times[name].append(elapsed)
                cpu[name].append(skopeo_cpu)
    return {name: {"seconds": round(statistics.median(values), 3), "runs": [round(t, 3) for t in values],
                   "skopeo_cpu_s": round(statistics.median(cpu[name]), 3)}
            for name, values in times.items()}
