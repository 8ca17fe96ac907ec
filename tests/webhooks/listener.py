"""A webhook listener on 127.0.0.1 for tests: records every POST, answers the status a test sets."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from tests.servers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def events(self) -> list[dict[str, Any]]:
        return json.loads(self.body)["events"]


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """How a listener checks ``X-Registry-Signature`` (the README shows the same snippet)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


class Listener:
    """``http.server`` in a thread; ``start()`` may be called late, on the port chosen at creation."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[Received] = []
        self.status = 200
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "Listener":
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = listener.status
                with listener._lock:
                    listener.received.append(Received(self.path, dict(self.headers.items()), body, status,
                                                      time.monotonic()))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def delivered(self) -> list[Received]:
        """POSTs answered 2xx."""
        with self._lock:
            return [item for item in self.received if 200 <= item.status < 300]

    def wait(self, predicate: Callable[[list[Received]], Any], seconds: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                value = predicate(list(self.received))
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {seconds} s for {what or 'the listener'}; got {self.received}")
            time.sleep(0.05)
