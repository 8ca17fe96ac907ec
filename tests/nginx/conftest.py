"""One stack for the nginx tests: the shipped nginx config over real api, worker and two Crane processes.

nginx, skopeo and redis-server are Debian packages (scripts/test.sh installs
them); without one of them the tests skip and say which.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.mongo_server import MongoWireServer
from tests.nginx.stack import Stack
from tests.servers import free_port, redis_server


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Runs to the end of the session, so it has a broker of its own: its worker must not take other tests' tasks."""
    missing = [tool for tool in ("nginx", "skopeo") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages; scripts/test.sh installs them)")
    with (MongoWireServer() as mongo,
          redis_server(free_port(), tmp_path_factory.mktemp("nginx-redis")) as redis_url):
        running = Stack(Path(tmp_path_factory.mktemp("nginx-stack")), mongo.url, redis_url)
        try:
            running.start()
        except BaseException:
            running.stop()
            sys.stderr.write(running.logs_report())
            raise
        try:
            yield running
        finally:
            running.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the tail of every process's log."""
    outcome = yield
    report = outcome.get_result()
    running = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, Stack):
        report.sections.append(("stack logs", running.logs_report()))
