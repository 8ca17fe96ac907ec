"""A small closed-loop HTTP/1.1 load tool: persistent connections, several processes.

Used by ``pull_benchmark.py`` where wrk cannot be: wrk's response parser does
not know a HEAD response has no body, so it waits for ``Content-Length`` bytes
that never come and counts nothing. This tool sends one request at a time on
each keep-alive connection (as wrk does), reads the response by
``Content-Length`` (none for HEAD, 204 and 304; chunked bodies are followed),
and counts what came back in the measured window. Each process runs its own
``selectors`` loop over its share of the connections, so the client scales
with processes the way wrk scales with threads.

    python benchmarks/httpload.py --method HEAD --processes 1 --connections 16 \\
        --duration 10 http://127.0.0.1:5000/v2/bench/app/manifests/latest
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import selectors
import socket
import time
from dataclasses import asdict, dataclass
from typing import Sequence
from urllib.parse import urlsplit

_NO_BODY_STATUSES = {204, 304}


@dataclass
class LoadResult:
    """What one run measured; ``requests`` counts complete responses of any status."""

    requests: int
    ok: int
    non_2xx_3xx: int
    socket_errors: int
    duration_s: float
    client_cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "requests_per_s": round(self.requests_per_s, 1)}


def build_request(method: str, url: str, headers: Sequence[tuple[str, str]] = ()) -> tuple[str, int, bytes]:
    """``(host, port, request bytes)`` of one keep-alive request for ``url``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url}: only http://host:port/path URLs are supported")
    port = parts.port or 80
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.hostname}:{port}",
             "User-Agent: pull-benchmark-httpload", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in headers]
    return parts.hostname, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _response_length(buffer: bytearray, head: bool) -> tuple[int, int] | None:
    """``(bytes the first response in buffer takes, status)``, or None while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    header_end = end + 4
    header = bytes(buffer[:end]).lower()
    status = int(header[9:12])
    if head or status in _NO_BODY_STATUSES or 100 <= status < 200:
        return header_end, status
    marker = header.find(b"\ncontent-length:")
    if marker >= 0:
        line_end = header.find(b"\r", marker + 1)
        length = int(header[marker + 16:line_end if line_end >= 0 else len(header)])
        total = header_end + length
        return (total, status) if len(buffer) >= total else None
    if b"\ntransfer-encoding: chunked" in header:
        position = header_end
        while True:
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(buffer[position:line_end]).split(b";")[0], 16)
            position = line_end + 2 + size + 2
            if len(buffer) < position:
                return None
            if size == 0:
                return position, status
    raise ValueError("response has neither Content-Length nor chunked encoding")


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.buffer = bytearray()


def _run_process(host: str, port: int, request: bytes, head: bool, connections: int,
                 start_at: float, duration: float, results: "multiprocessing.Queue[dict]") -> None:
    selector = selectors.DefaultSelector()
    conns = [_Connection(host, port) for _ in range(connections)]
    counts = {"requests": 0, "ok": 0, "non_2xx_3xx": 0, "socket_errors": 0}
    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    end = started + duration
    for conn in conns:
        conn.sock.sendall(request)
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    now = started
    while now < end:
        for key, _ in selector.select(timeout=max(0.0, end - now)):
            conn = key.data
            try:
                data = conn.sock.recv(262144)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:  # the server closed the connection: count it and open a new one
                counts["socket_errors"] += 1
                selector.unregister(conn.sock)
                conn.sock.close()
                fresh = _Connection(host, port)
                conn.sock, conn.buffer = fresh.sock, bytearray()
                conn.sock.sendall(request)
                selector.register(conn.sock, selectors.EVENT_READ, conn)
                continue
            conn.buffer += data
            while True:
                parsed = _response_length(conn.buffer, head)
                if parsed is None:
                    break
                length, status = parsed
                del conn.buffer[:length]
                counts["requests"] += 1
                counts["ok" if 200 <= status < 400 else "non_2xx_3xx"] += 1
                conn.sock.send(request)
        now = time.monotonic()
    elapsed = time.monotonic() - started
    cpu_end = resource.getrusage(resource.RUSAGE_SELF)
    for conn in conns:
        conn.sock.close()
    cpu = (cpu_end.ru_utime - cpu_start.ru_utime) + (cpu_end.ru_stime - cpu_start.ru_stime)
    results.put({**counts, "duration_s": elapsed, "client_cpu_s": cpu})


def run_load(url: str, method: str = "GET", headers: Sequence[tuple[str, str]] = (), processes: int = 1,
             connections: int = 16, duration: float = 10.0) -> LoadResult:
    """Keep ``connections`` requests in flight for ``duration`` seconds; count complete responses."""
    if processes < 1 or connections < processes:
        raise ValueError("need at least one process and at least one connection per process")
    host, port, request = build_request(method, url, headers)
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 0.3 + 0.05 * processes  # every process connected before the clock starts
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    workers = [context.Process(target=_run_process, daemon=True,
                               args=(host, port, request, method == "HEAD", share, start_at, duration, results))
               for share in shares]
    for worker in workers:
        worker.start()
    try:
        reports = [results.get(timeout=duration + 30) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    return LoadResult(
        requests=sum(r["requests"] for r in reports), ok=sum(r["ok"] for r in reports),
        non_2xx_3xx=sum(r["non_2xx_3xx"] for r in reports),
        socket_errors=sum(r["socket_errors"] for r in reports),
        duration_s=max(r["duration_s"] for r in reports),
        client_cpu_s=sum(r["client_cpu_s"] for r in reports))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET", choices=["GET", "HEAD"])
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    headers = [(name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in args.header)]
    result = run_load(args.url, args.method, headers, args.processes, args.connections, args.duration)
    print(json.dumps(result.as_dict()))


if __name__ == "__main__":
    main()
