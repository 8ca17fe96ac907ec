"""A whole blob leaves through gunicorn's sendfile path on a corked socket, uncorked once it is sent.

These tests call the WSGI app as gunicorn does, with gunicorn's own file
wrapper and a real TCP connection in ``gunicorn.socket``, and read the cork
state from the kernel.
"""
from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest
from gunicorn.http.wsgi import FileWrapper
from werkzeug.test import EnvironBuilder

LAYER = bytes(range(256)) * 400   # 102400 bytes

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux-only")


@pytest.fixture
def image(publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest", layers=[LAYER])
    publisher.publish(repo)
    crane.tick()
    return image


@pytest.fixture
def connection() -> Iterator[socket.socket]:
    """The server's end of a real loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname()) as _client:
        server_end, _ = listener.accept()
        with server_end:
            yield server_end


def corked(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))


def call_as_gunicorn(crane, sock: socket.socket, path: str, **headers: str) -> tuple[str, Any]:
    """The status and the raw WSGI iterable gunicorn would get for a GET of ``path``."""
    environ = EnvironBuilder(path=path, headers=headers).get_environ()
    environ.update({"gunicorn.socket": sock, "wsgi.file_wrapper": FileWrapper})
    status: list[str] = []
    body = crane.app.wsgi_app(environ, lambda code, _headers, _exc=None: status.append(code))
    return status[0], body


def test_a_whole_blob_takes_the_sendfile_path_corked_and_is_uncorked_when_closed(crane, image, connection):
    digest, data = image.layers[0]
    status, body = call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}")
    assert status.startswith("200")
    assert isinstance(body, FileWrapper)   # gunicorn's test for taking its sendfile path
    assert corked(connection)
    assert b"".join(body) == data
    body.close()
    assert body.filelike.closed
    assert not corked(connection)


def test_a_range_is_not_corked_and_answers_its_slice(crane, image, connection):
    digest, data = image.layers[0]
    status, body = call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}", Range="bytes=10-19")
    assert status.startswith("206")
    assert not corked(connection)
    assert b"".join(body) == data[10:20]
    body.close()
    assert not corked(connection)


def test_a_not_modified_answer_is_not_corked(crane, image, connection):
    digest, _ = image.layers[0]
    status, body = call_as_gunicorn(crane, connection, f"/v2/my/app/blobs/{digest}", **{"If-None-Match": f'"{digest}"'})
    assert status.startswith("304")
    assert not corked(connection)
    assert b"".join(body) == b""
    body.close()
    assert not corked(connection)


def test_without_a_tcp_socket_the_blob_is_sent_as_before(crane, image):
    digest, data = image.layers[0]
    unix_end, other_end = socket.socketpair()
    with unix_end, other_end:
        status, body = call_as_gunicorn(crane, unix_end, f"/v2/my/app/blobs/{digest}")
        assert status.startswith("200")
        assert isinstance(body, FileWrapper)
        assert b"".join(body) == data
        body.close()
