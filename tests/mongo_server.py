"""A MongoDB wire-protocol server over one mongomock database, for tests that span processes.

No MongoDB server can run where the tests run, and mongomock lives inside one
process. Tests that start real processes (Celery workers, ``pulp-registry``
servers) still need one shared database: ``MongoWireServer`` serves a
``mongomock.MongoClient`` on 127.0.0.1 over OP_MSG (and the OP_QUERY handshake
that pymongo opens with), so ``pymongo.MongoClient(server.url)`` works from
any process.

Every command runs under one global lock: each command is atomic across all
clients, which is stronger than MongoDB (and than mongomock in one process).
Sessions, transactions, auth, compression and TLS are not served. The commands
themselves are in ``mongo_commands.py``.

Run on its own: ``python -m tests.mongo_server --port-file PATH`` (until SIGTERM).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
from typing import Any

import bson
import mongomock

from tests.mongo_commands import CommandError, MongoBackend

__all__ = ["CommandError", "MongoBackend", "MongoWireServer", "main"]

log = logging.getLogger(__name__)

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
_HEADER = struct.Struct("<iiii")
_CHECKSUM_PRESENT, _MORE_TO_COME = 1, 2


# --- wire format -------------------------------------------------------------------------------


def parse_op_msg(payload: bytes) -> tuple[int, dict[str, Any]]:
    """Flags and command of an OP_MSG: kind 1 sections join the body under their identifier."""
    (flags,) = struct.unpack_from("<I", payload)
    end = len(payload) - (4 if flags & _CHECKSUM_PRESENT else 0)
    body: dict[str, Any] = {}
    sequences: dict[str, list[dict[str, Any]]] = {}
    pos = 4
    while pos < end:
        kind = payload[pos]
        pos += 1
        (size,) = struct.unpack_from("<i", payload, pos)
        if kind == 0:
            body = bson.decode(payload[pos:pos + size])
        elif kind == 1:
            name_end = payload.index(b"\x00", pos + 4)
            identifier = payload[pos + 4:name_end].decode()
            sequences[identifier] = bson.decode_all(payload[name_end + 1:pos + size])
        else:
            raise CommandError(9, "FailedToParse", f"unknown OP_MSG section kind {kind}")
        pos += size
    body.update(sequences)
    return flags, body


def parse_op_query(payload: bytes) -> dict[str, Any]:
    """The command of a legacy OP_QUERY (only the handshake on ``admin.$cmd`` uses it)."""
    name_end = payload.index(b"\x00", 4)
    pos = name_end + 1 + 8  # numberToSkip, numberToReturn
    (size,) = struct.unpack_from("<i", payload, pos)
    query = bson.decode(payload[pos:pos + size])
    query = query.get("$query", query)
    query.setdefault("$db", payload[4:name_end].decode().split(".", 1)[0])
    return query


def pack_message(request_id: int, response_to: int, opcode: int, reply: dict[str, Any]) -> bytes:
    """An OP_MSG (one body section) or OP_REPLY (one document) message."""
    document = bson.encode(reply)
    if opcode == OP_MSG:
        payload = struct.pack("<IB", 0, 0) + document
    else:
        payload = struct.pack("<iqii", 0, 0, 0, 1) + document
    return _HEADER.pack(_HEADER.size + len(payload), request_id, response_to, opcode) + payload


# --- server ------------------------------------------------------------------------------------


class _Handler(socketserver.BaseRequestHandler):
    """One client connection: read a message, run it, answer it, until the client leaves."""

    server: _TCPServer

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = self.request.makefile("rb")
        try:
            while True:
                header = reader.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                length, request_id, _response_to, opcode = _HEADER.unpack(header)
                payload = reader.read(length - _HEADER.size)
                if len(payload) < length - _HEADER.size:
                    return
                reply = self._answer(request_id, opcode, payload)
                if reply:
                    self.request.sendall(reply)
        except OSError:
            return  # the client went away, or stop() closed the connection
        finally:
            reader.close()

    def _answer(self, request_id: int, opcode: int, payload: bytes) -> bytes | None:
        backend, reply_id = self.server.backend, next(self.server.request_ids)
        if opcode == OP_QUERY:
            command = parse_op_query(payload)
            return pack_message(reply_id, request_id, OP_REPLY, backend.execute(command))
        if opcode != OP_MSG:
            log.warning("closing a connection that sent opcode %s", opcode)
            raise OSError(f"unsupported opcode {opcode}")
        try:
            flags, command = parse_op_msg(payload)
        except CommandError as exc:
            return pack_message(reply_id, request_id, OP_MSG, exc.reply())
        reply = backend.execute(command)
        return None if flags & _MORE_TO_COME else pack_message(reply_id, request_id, OP_MSG, reply)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, backend: MongoBackend) -> None:
        self.backend = backend
        self.request_ids = itertools.count(1)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client


class MongoWireServer:
    """A mongomock database served on 127.0.0.1 to real pymongo clients in any process."""

    def __init__(self, port: int = 0, client: mongomock.MongoClient | None = None) -> None:
        self.backend = MongoBackend(client)
        self._requested_port = port
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def client(self) -> mongomock.MongoClient:
        """The served mongomock client (take ``backend.lock`` to use it while clients run)."""
        return self.backend.client

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> MongoWireServer:
        """Bind (a free port unless one was given) and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        self._server = _TCPServer(self._requested_port, self.backend)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mongo-wire-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close every client connection; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MongoWireServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; ``--port-file`` receives the port once it is bound."""
    parser = argparse.ArgumentParser(prog="python -m tests.mongo_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--port-file", help="write the bound port here (atomically)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with MongoWireServer(args.port) as server:
        if args.port_file:
            partial = f"{args.port_file}.{os.getpid()}.tmp"
            with open(partial, "w", encoding="ascii") as stream:
                stream.write(f"{server.port}\n")
            os.replace(partial, args.port_file)
        print(f"serving {server.url}", file=sys.stderr, flush=True)
        while not stopping.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
