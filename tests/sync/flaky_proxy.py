"""A misbehaving reverse proxy in front of an upstream registry, for the sync's retries and checks.

It answers 500, 429 (``Retry-After``) or drops the connection on a schedule or at a
seeded rate, passes the rest through (streaming, headers kept, ``Location``
rewritten), and can flip a byte of one blob to show that a sync verifies digests.
"""
from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import ssl
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any





HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}
BLOB_PATH_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
CHUNK = 64 * 1024


@dataclass
class FlakyPolicy:
    """Which requests fail. Only requests whose path matches ``match`` (a regex) are eligible; among
    them, the n-th (1-based) gets 500 when ``n % error_every == 0``, 429 when ``n % throttle_every == 0``,
    a dropped connection when ``n % drop_every == 0``; otherwise 500 / 429 at random with
    ``error_rate`` / ``throttle_rate`` (seeded: the same run fails the same way)."""

    error_every: int = 0
    throttle_every: int = 0
    drop_every: int = 0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    match: str = r"^/v2/.+"
    retry_after: str = "1"
    seed: int = 0


class FlakyProxy:
    """A threaded HTTP reverse proxy on 127.0.0.1 in front of ``upstream`` that misbehaves on purpose.

    Passes requests through with their headers (``WWW-Authenticate`` included),
    streams bodies, rewrites ``Location`` to point at itself. ``counts`` holds
    ``requests``, ``passed``, ``500``, ``429``, ``dropped``, ``corrupted``.
    ``corrupt_digest`` names one blob whose bytes are served with one byte flipped.
    Exposes the upstream's ``username``/``password``; it is plain HTTP itself
    (``ca_bundle`` None) and checks the upstream's TLS with the upstream's CA.
    """

    def __init__(self, upstream: Any, policy: FlakyPolicy | None = None) -> None:
        self.upstream = upstream
        self.upstream_url = upstream.url.rstrip("/")
        self.username = getattr(upstream, "username", None)
        self.password = getattr(upstream, "password", None)
        self.ca_bundle: str | None = None
        self.policy = policy or FlakyPolicy()
        self.corrupt_digest: str | None = None
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str, int]] = []
        self._eligible = 0
        self._random = random.Random(self.policy.seed)
        self._lock = threading.Lock()
        upstream_ca = getattr(upstream, "ca_bundle", None)
        self._tls_context = ssl.create_default_context(cadata=upstream_ca) if upstream_ca else None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="flaky-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1]

    @property
    def creds(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def configure(self, **changes: Any) -> None:
        """Change the policy while running (``configure(error_every=0)`` heals it); restarts the counting."""
        with self._lock:
            self.policy = FlakyPolicy(**{**self.policy.__dict__, **changes})
            self._eligible = 0
            self._random = random.Random(self.policy.seed)

    def start(self) -> "FlakyProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FlakyProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def decide(self, path: str) -> str:
        """``"pass"``, ``"500"``, ``"429"`` or ``"drop"`` for the next request to ``path``."""
        with self._lock:
            self.counts["requests"] += 1
            policy = self.policy
            if not re.search(policy.match, path):
                return "pass"
            self._eligible += 1
            n = self._eligible
            roll = self._random.random()
        if policy.error_every and n % policy.error_every == 0:
            return "500"
        if policy.throttle_every and n % policy.throttle_every == 0:
            return "429"
        if policy.drop_every and n % policy.drop_every == 0:
            return "drop"
        if roll < policy.error_rate:
            return "500"
        if roll < policy.error_rate + policy.throttle_rate:
            return "429"
        return "pass"

    def count(self, what: str, method: str, path: str, status: int) -> None:
        with self._lock:
            self.counts[what] += 1
            self.log.append((method, path, status))

    def connection(self) -> http.client.HTTPConnection:
        parsed = urllib.parse.urlsplit(self.upstream_url)
        if parsed.scheme == "https":
            return http.client.HTTPSConnection(parsed.hostname, parsed.port, timeout=60, context=self._tls_context)
        return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)

    def rewrite_location(self, value: str) -> str:
        return self.url + value[len(self.upstream_url):] if value.startswith(self.upstream_url) else value

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                decision = proxy.decide(path)
                if decision == "drop":
                    proxy.count("dropped", self.command, path, 0)
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(2)
                    return
                if decision in ("500", "429"):
                    proxy.count(decision, self.command, path, int(decision))
                    return self._refuse(int(decision))
                self._pass(path, body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

            def _refuse(self, status: int) -> None:
                data = json.dumps({"errors": [{"code": "TOOMANYREQUESTS" if status == 429 else "UNKNOWN",
                                               "message": "flaky proxy says no"}]}).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", proxy.policy.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _pass(self, path: str, body: bytes) -> None:
                upstream = proxy.connection()
                try:
                    headers = {key: value for key, value in self.headers.items()
                               if key.lower() not in HOP_BY_HOP and key.lower() != "host"}
                    headers["Host"] = urllib.parse.urlsplit(proxy.upstream_url).netloc
                    upstream.request(self.command, self.path, body=body if body or self.command in
                                     ("POST", "PUT", "PATCH") else None, headers=headers)
                    response = upstream.getresponse()
                    self._relay(path, response)
                finally:
                    upstream.close()

            def _relay(self, path: str, response: http.client.HTTPResponse) -> None:
                blob = BLOB_PATH_RE.match(path)
                corrupt = (blob is not None and blob.group("digest") == proxy.corrupt_digest
                           and self.command == "GET" and response.status == 200)
                length = response.getheader("Content-Length")
                data = None if length is not None or self.command == "HEAD" else response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
                        continue
                    self.send_header(key, proxy.rewrite_location(value) if key.lower() == "location" else value)
                self.send_header("Content-Length", length if data is None else str(len(data)))
                self.end_headers()
                proxy.count("corrupted" if corrupt else "passed", self.command, path, response.status)
                if self.command == "HEAD":
                    return
                chunks = iter([data]) if data is not None else iter(lambda: response.read(CHUNK), b"")
                first = True
                for chunk in chunks:
                    if corrupt and first and chunk:
                        chunk = flip_first_byte(chunk)
                        first = False
                    self.wfile.write(chunk)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def flip_first_byte(data: bytes) -> bytes:
    """What the proxy does to a corrupted blob: same length, another digest."""
    return bytes([data[0] ^ 0xFF]) + data[1:] if data else data
