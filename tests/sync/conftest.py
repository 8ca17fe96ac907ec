"""Fixtures for the sync tests: real upstream registries (docker-registry) and a flaky proxy.

``upstream`` (plain HTTP, anonymous; in tests/conftest.py, the CLI tests use it too), ``upstream_tls_basic`` (HTTPS with a test CA
and htpasswd Basic), ``upstream_token`` (token auth, realm ``upstream_token.token_server``)
each start a fresh docker-registry per test (about a tenth of a second), so a
test may fill and delete freely. ``flaky_proxy(upstream_like, **policy)`` puts a
misbehaving proxy in front of one. Helpers live in upstreams.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.sync.flaky_proxy import FlakyPolicy, FlakyProxy
from tests.sync.token_server import TokenServer
from tests.sync.upstreams import Upstream, start_registry

UPSTREAM_USERNAME = "syncer"
UPSTREAM_PASSWORD = "upstream-secret"


@pytest.fixture(scope="session", autouse=True)
def upstream_tools() -> None:
    missing = [tool for tool in ("docker-registry", "skopeo", "umoci") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: the sync tests need them "
                    "(apt-get install docker-registry skopeo umoci)", pytrace=False)


@pytest.fixture
def upstream_tls_basic(tmp_path: Path) -> Iterator[Upstream]:
    """docker-registry over HTTPS (``.ca_bundle`` is the test CA's PEM) with Basic ``.username``/``.password``."""
    with start_registry(tmp_path / "upstream-tls", tls=True, username=UPSTREAM_USERNAME,
                        password=UPSTREAM_PASSWORD) as server:
        yield server


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    with TokenServer(tmp_path / "token-server", UPSTREAM_USERNAME, UPSTREAM_PASSWORD) as server:
        yield server


@pytest.fixture
def upstream_token(tmp_path: Path, token_server: TokenServer) -> Iterator[Upstream]:
    """docker-registry with token auth; ``.username``/``.password`` are the token server's Basic credentials.

    Anonymous tokens pull public repositories (not ``private/...``); with the
    credentials a token pulls and pushes. ``.token_server.issued`` counts tokens.
    """
    with start_registry(tmp_path / "upstream-token", token=token_server) as server:
        server.username, server.password = token_server.username, token_server.password
        yield server


@pytest.fixture
def flaky_proxy() -> Iterator[Callable[..., FlakyProxy]]:
    """A factory: ``flaky_proxy(upstream, error_every=3, throttle_every=5, ...)`` -> a running FlakyProxy."""
    started: list[FlakyProxy] = []

    def make(upstream_like: Any, **policy: Any) -> FlakyProxy:
        proxy = FlakyProxy(upstream_like, FlakyPolicy(**policy)).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
