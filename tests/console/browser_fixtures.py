"""Fixtures of the console's browser test: a real ``pulp-registry dev``, an upstream for syncs, Debian's
Chromium driven by Playwright, and where screenshots go.

Imported by ``test_console_browser.py`` only (the other console tests stay fast). Chromium is
``/usr/bin/chromium`` (Debian's package); Playwright never downloads a browser here. Without it,
or without Playwright, the tests are skipped with the reason.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.images import build_oci_layout, layout_manifest, skopeo
from tests.servers import DevServer, run_dev_server

CHROMIUM = Path("/usr/bin/chromium")
#: Where the repository page's screenshot for the README goes (written when UPDATE_SCREENSHOTS=1).
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "console-repository.png"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
USER_PASSWORD = "browser-user-password"


@dataclass(frozen=True)
class PushedImage:
    name: str
    tag: str
    digest: str
    repo_id: str


@dataclass(frozen=True)
class MirrorRepository:
    name: str
    repo_id: str


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright (skipped with the reason when either is missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package to run the console's browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def console_server(chromium, tmp_path_factory) -> Iterator[DevServer]:
    """``pulp-registry dev`` (admin API with the console, Crane, a worker) on free 127.0.0.1 ports."""
    with run_dev_server(tmp_path_factory.mktemp("console-dev")) as server:
        yield server


@pytest.fixture(scope="module")
def pushed_image(console_server: DevServer, tmp_path_factory) -> PushedImage:
    """An image pushed with skopeo to the admin side, as ``docker push`` would."""
    name, tag = "team/web-app", "1.0"  # a fresh server per module: a stable name for the README
    layout = build_oci_layout(tmp_path_factory.mktemp("console-image"), "src",
                              layers=[{"app/hello.txt": b"hello from the console's browser test\n"}])
    digest, _ = layout_manifest(layout, "src")
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", console_server.creds, f"oci:{layout}:src",
           f"docker://{console_server.admin_host}/{name}:{tag}")
    found = console_server.api("GET", "/pulp/api/v2/repositories/", params={"name": name})
    found.raise_for_status()
    body = found.json()
    rows = body if isinstance(body, list) else body.get("results", [])
    repo_id = next(row["id"] for row in rows if row["name"] == name)
    return PushedImage(name, tag, digest, repo_id)


@pytest.fixture(scope="module")
def mirror(console_server: DevServer, tmp_path_factory) -> Iterator[MirrorRepository]:
    """A repository whose feed is a Debian docker-registry holding two tags."""
    from tests.sync.upstreams import start_registry

    with start_registry(tmp_path_factory.mktemp("console-upstream")) as upstream:
        for tag, payload in (("1.0", b"one"), ("2.0", b"two")):
            upstream.push_image("library/tool", tag, [payload * 1000])
        name = f"mirror/tool-{uuid.uuid4().hex[:6]}"
        created = console_server.api("POST", "/pulp/api/v2/repositories/", json={
            "name": name, "feed": {"url": upstream.url, "upstream_name": "library/tool"}})
        assert created.status_code == 201, created.text
        yield MirrorRepository(name, created.json()["id"])


@pytest.fixture(scope="module")
def plain_user(console_server: DevServer) -> str:
    """A user who holds no role (may log in, may read little)."""
    login = f"plain-{uuid.uuid4().hex[:6]}"
    created = console_server.api("POST", "/pulp/api/v2/users/", json={"login": login, "password": USER_PASSWORD})
    assert created.status_code == 201, created.text
    return login


@pytest.fixture
def screenshots(tmp_path_factory) -> Path:
    """``$CONSOLE_SCREENSHOTS``, or ``screenshots`` under pytest's temporary directory."""
    where = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


def new_page(chromium: Any, server: DevServer, viewport: dict[str, int] = DESKTOP) -> Any:
    """A page in a fresh context (own cookies) that may use the clipboard on the console's origin."""
    context = chromium.new_context(viewport=viewport, base_url=server.api_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.api_url)
    context.set_default_timeout(15_000)
    return context.new_page()


def log_in(page: Any, login: str, password: str) -> None:
    """Through the form, as a person does."""
    page.goto("/console/login")
    page.get_by_label("Username").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
