"""A streamed blob leaves through gunicorn's sendfile path with a small kernel queue (``send_lowat``).

The app is called as gunicorn calls it, with gunicorn's own file wrapper and a
real loopback TCP connection in ``gunicorn.socket``; the socket option is read
back from the kernel.
"""
from __future__ import annotations

import contextlib
import socket
from typing import Any, Iterator

import pytest
from gunicorn.http.wsgi import FileWrapper
from werkzeug.test import EnvironBuilder

from crane.config import CraneSettings
from pulp_registry.config import ConfigError

LAYER = bytes(range(256)) * 400   # 102400 bytes

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_NOTSENT_LOWAT"), reason="TCP_NOTSENT_LOWAT is Linux-only")


def publish_layer(publisher, crane) -> tuple[str, bytes]:
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest", layers=[LAYER])
    publisher.publish(repo)
    crane.tick()
    return image.layers[0]


@contextlib.contextmanager
def loopback_connection() -> Iterator[socket.socket]:
    """The server's end of a real loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as _client:
        server_end, _ = listener.accept()
        with server_end:
            yield server_end


@pytest.fixture
def connection() -> Iterator[socket.socket]:
    with loopback_connection() as server_end:
        yield server_end


def unsent_limit(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT)


def call_as_gunicorn(crane, sock: socket.socket, path: str, method: str = "GET") -> tuple[str, Any]:
    """The status and the raw WSGI iterable gunicorn would get."""
    environ = EnvironBuilder(path=path, method=method).get_environ()
    environ.update({"gunicorn.socket": sock, "wsgi.file_wrapper": FileWrapper})
    status: list[str] = []
    body = crane.app.wsgi_app(environ, lambda code, _headers, _exc=None: status.append(code))
    return status[0], body


def test_a_blob_get_takes_the_sendfile_path_with_the_unsent_limit_set(publisher, crane, connection):
    digest, data = publish_layer(publisher, crane)
    assert unsent_limit(connection) == 0   # the system's setting
    status, body = call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}")
    assert status.startswith("200")
    assert isinstance(body, FileWrapper)   # gunicorn's test for taking its sendfile path
    assert unsent_limit(connection) == CraneSettings().send_lowat == 16384
    assert b"".join(body) == data
    body.close()


def test_a_configured_limit_is_used_and_zero_leaves_the_socket_alone(publisher, make_crane, connection):
    crane = make_crane(send_lowat=65536)
    digest, _ = publish_layer(publisher, crane)
    call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}")[1].close()
    assert unsent_limit(connection) == 65536

    untouched = make_crane(send_lowat=0)
    untouched.tick()
    with loopback_connection() as other:
        status, body = call_as_gunicorn(untouched, other, f"/v2/my/app/blobs/{digest}")
        body.close()
        assert status.startswith("200")
        assert unsent_limit(other) == 0


def test_a_head_leaves_the_socket_alone(publisher, crane, connection):
    digest, _ = publish_layer(publisher, crane)
    status, _ = call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}", method="HEAD")
    assert status.startswith("200")
    assert unsent_limit(connection) == 0


def test_a_unix_socket_serves_the_blob_as_before(publisher, crane):
    digest, data = publish_layer(publisher, crane)
    unix_end, other_end = socket.socketpair()
    with unix_end, other_end:
        status, body = call_as_gunicorn(crane, unix_end, f"/v2/my/app/blobs/{digest}")
        assert status.startswith("200")
        assert b"".join(body) == data
        body.close()


def test_a_negative_limit_stops_start_up():
    with pytest.raises(ConfigError, match="send_lowat"):
        CraneSettings(send_lowat=-1)
