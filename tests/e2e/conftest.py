"""End-to-end fixtures: one ``pulp-registry dev`` for the session, real clients (skopeo, registry-admin).

skopeo and umoci must be installed: a missing tool fails the tests, it does not
skip them (scripts/test.sh installs them). Client helpers live in clients.py.
"""
from __future__ import annotations

import shutil
import uuid
from typing import Iterator

import pytest

from tests.servers import DevServer, run_dev_server


@pytest.fixture(scope="session", autouse=True)
def client_tools() -> None:
    missing = [tool for tool in ("skopeo", "umoci") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: the e2e tests need them "
                    f"(scripts/test.sh installs them with apt-get)", pytrace=False)


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory) -> Iterator[DevServer]:
    with run_dev_server(tmp_path_factory.mktemp("dev-server")) as server:
        yield server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing e2e test, attach the tail of the dev server's log to the report."""
    outcome = yield
    report = outcome.get_result()
    server = item.funcargs.get("dev_server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, DevServer):
        report.sections.append(("pulp-registry dev log (last 200 lines)",
                                "\n".join(server.log_text().splitlines()[-200:])))


@pytest.fixture
def repo_name(request) -> str:
    """A registry name no other test uses, e.g. ``e2e/oci-layout-3f2a9c1b``."""
    stem = request.node.originalname.removeprefix("test_").replace("_", "-")[:40].strip("-")
    return f"e2e/{stem}-{uuid.uuid4().hex[:8]}"


