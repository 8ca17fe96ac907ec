"""The console in a real browser: Debian's headless Chromium, driven by Playwright, against ``pulp-registry dev``.

A person logs in through the form, browses to an image pushed with skopeo, copies its pull
command, starts a sync and watches its task to the end, and is refused a page their roles do
not allow; the pages stay usable with the keyboard and on a phone-sized screen. Screenshots
of the main pages go to ``$CONSOLE_SCREENSHOTS`` (default: ``screenshots`` under pytest's
temporary directory); with ``UPDATE_SCREENSHOTS=1`` the repository page's one is also written
to ``docs/images/console-repository.png`` for the README.
"""
from __future__ import annotations

import os
import re
import time
import uuid
from typing import Any

import pytest

from tests.console import browser_fixtures as fx

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the chromium fixture skips every test, with the reason
    PlaywrightError = Exception  # type: ignore[misc,assignment]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The fixtures, bound here by assignment so that pytest finds them in this module.
chromium = fx.chromium
console_server = fx.console_server
pushed_image = fx.pushed_image
mirror = fx.mirror
plain_user = fx.plain_user
screenshots = fx.screenshots

TASK_DEADLINE_S = 60.0
ENDED = ("finished", "error", "canceled", "skipped")


def _admin_page(chromium: Any, server: Any, viewport: dict[str, int] = fx.DESKTOP) -> Any:
    page = fx.new_page(chromium, server, viewport)
    fx.log_in(page, *server.auth)
    return page


def _built(page: Any) -> None:
    """Skip when the page is still the stub of a console module being written."""
    if "not built yet" in page.content():
        pytest.skip(f"page not built: {page.url}")


def _shoot(page: Any, screenshots: Any, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def test_log_in_browse_to_the_pushed_image_and_copy_its_pull_command(chromium, console_server, pushed_image,
                                                                     screenshots):
    page = fx.new_page(chromium, console_server)
    page.goto("/console/repositories/")
    assert "/console/login" in page.url  # no session yet: the login form first
    fx.log_in(page, *console_server.auth)
    assert page.url.endswith("/console/repositories/")
    _built(page)
    page.get_by_label("Name contains").fill(pushed_image.name)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    _shoot(page, screenshots, "repositories")

    page.get_by_role("link", name=pushed_image.name, exact=True).click()
    page.wait_for_load_state()
    _built(page)
    assert page.get_by_role("heading", level=1).inner_text().startswith(pushed_image.name)
    _shoot(page, screenshots, "repository")
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        fx.DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(fx.DOCS_SCREENSHOT))  # the first 1280x800, as a reader sees it

    expected = f"docker pull {console_server.registry_host}/{pushed_image.name}:{pushed_image.tag}"
    source = page.locator(f'input.copy-source[value="{expected}"]')
    assert source.count() == 1, f"no copy field holds {expected!r}"
    source_id = source.get_attribute("id")
    assert page.evaluate("window.isSecureContext")  # 127.0.0.1 counts as secure: the clipboard API is used
    page.locator(f'button.copy-button[data-copy-target="{source_id}"]').click()
    page.wait_for_function(f"document.getElementById('{source_id}-status').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == expected

    page.get_by_role("link", name=pushed_image.tag, exact=True).first.click()
    page.wait_for_load_state()
    _built(page)
    assert pushed_image.digest in page.content()
    _shoot(page, screenshots, "manifest")
    page.context.close()


def test_without_the_clipboard_api_copy_selects_the_command(chromium, console_server, pushed_image):
    page = fx.new_page(chromium, console_server)
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined})")
    fx.log_in(page, *console_server.auth)
    page.goto(f"/console/repositories/{pushed_image.repo_id}/")
    _built(page)
    expected = f"docker pull {console_server.registry_host}/{pushed_image.name}:{pushed_image.tag}"
    source_id = page.locator(f'input.copy-source[value="{expected}"]').get_attribute("id")
    page.locator(f'button.copy-button[data-copy-target="{source_id}"]').click()
    status = page.locator(f"#{source_id}-status")
    page.wait_for_function(f"document.getElementById('{source_id}-status').textContent !== ''")
    assert status.inner_text() in ("Copied", "Press Ctrl+C to copy")
    selected = page.evaluate(f"""(() => {{ const input = document.getElementById('{source_id}');
        return input.value.substring(input.selectionStart, input.selectionEnd); }})()""")
    assert selected == expected  # selected for Ctrl+C whatever execCommand did
    page.context.close()


def _task_state(page: Any) -> str | None:
    """The state the task page shows now (its script keeps ``data-state`` current; it may be reloading)."""
    try:
        return page.locator("[data-task-id][data-state]").first.get_attribute("data-state", timeout=5_000)
    except PlaywrightError:   # caught between the old page and the reloaded one: ask again
        page.wait_for_load_state()
        return page.locator("[data-task-id][data-state]").first.get_attribute("data-state")


def test_sync_now_shows_the_task_until_it_ends(chromium, console_server, mirror, screenshots):
    page = _admin_page(chromium, console_server)
    page.goto(f"/console/repositories/{mirror.repo_id}/")
    _built(page)
    page.get_by_role("link", name="Sync", exact=True).click()
    page.wait_for_load_state()
    _built(page)
    assert page.url.endswith(f"/console/repositories/{mirror.repo_id}/sync")
    _shoot(page, screenshots, "sync")
    page.get_by_role("button", name="Sync now").click()
    page.wait_for_load_state()
    _built(page)
    assert re.search(r"/console/tasks/[^/]+/$", page.url), page.url
    assert page.locator("progress").count() >= 1  # the progress bar the page updates while the task runs
    seen = [_task_state(page)]
    deadline = time.monotonic() + TASK_DEADLINE_S
    while seen[-1] not in ENDED:   # the page polls and updates itself, then reloads once when it ends
        assert time.monotonic() < deadline, f"the task page still shows {seen[-1]!r}"
        page.wait_for_timeout(100)
        state = _task_state(page)
        if state != seen[-1]:
            seen.append(state)
    assert seen[-1] == "finished", f"states seen: {seen}"
    # The page reloads once when its task ends: wait for the reloaded page, not the one being replaced.
    page.get_by_role("heading", name="What the sync did").wait_for(timeout=TASK_DEADLINE_S * 1000)
    assert page.locator(".state-finished").first.is_visible()
    _shoot(page, screenshots, "task")

    page.get_by_role("link", name="Tasks", exact=True).first.click()
    page.wait_for_load_state()
    _built(page)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Tasks")
    _shoot(page, screenshots, "tasks")
    page.context.close()


def test_a_user_without_the_role_is_refused_the_page(chromium, console_server, plain_user, pushed_image):
    page = fx.new_page(chromium, console_server)
    fx.log_in(page, plain_user, fx.USER_PASSWORD)
    assert plain_user in page.locator("header .who").inner_text()
    for url in ("/console/people/", f"/console/repositories/{pushed_image.repo_id}/access"):
        response = page.goto(url)
        assert response.status == 403, url
        assert "Your roles do not allow this page" in page.locator("main").inner_text()
        assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert page.goto("/console/system/").status == 200  # any logged-in user may see the system page
    page.context.close()


def test_the_people_system_and_access_pages(chromium, console_server, pushed_image, screenshots):
    page = _admin_page(chromium, console_server)
    page.get_by_role("link", name="System", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", level=1).inner_text() == "System"
    admin_host = f"127.0.0.1:{console_server.api_port}"
    assert page.locator("#help-docker-login").input_value() == f"docker login {admin_host}"
    assert page.locator("#help-docker-pull").input_value() == f"docker pull {console_server.registry_host}/NAME:TAG"
    assert page.locator("#help-admin-login").input_value() == f"registry-admin login --url {console_server.api_url}"
    assert page.get_by_text("Database").first.is_visible() and "connected" in page.content()
    ca = page.get_by_role("link", name="Download the CA certificate (ca.crt)")
    assert ca.count() == 1  # pulp-registry dev makes a CA
    assert page.request.get(console_server.api_url + ca.get_attribute("href")).ok
    _shoot(page, screenshots, "system")

    page.get_by_role("link", name="Users & roles").click()
    page.wait_for_load_state()
    assert page.get_by_role("link", name="super-users", exact=True).first.is_visible()
    _shoot(page, screenshots, "people")
    page.get_by_role("link", name="super-users", exact=True).first.click()
    page.wait_for_load_state()
    helper = f"helper-{uuid.uuid4().hex[:6]}"
    assert console_server.api("POST", "/pulp/api/v2/users/", json={"login": helper, "password": fx.USER_PASSWORD}).ok
    page.get_by_label("Login of the user to add").fill(helper)
    page.get_by_role("button", name="Add member").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").filter(has_text=f"{helper} now holds the role super-users").is_visible()
    _shoot(page, screenshots, "role")
    page.once("dialog", lambda dialog: dialog.accept())  # "Remove ... from the role super-users?"
    page.get_by_role("button", name=f"Remove {helper} from super-users").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"{helper} no longer holds the role super-users").is_visible()
    members = console_server.api("GET", "/pulp/api/v2/roles/super-users/").json()["users"]
    assert helper not in members and console_server.admin_username in members

    page.goto(f"/console/repositories/{pushed_image.repo_id}/access")
    assert "Who may do what" in page.get_by_role("heading", level=1).inner_text()
    _shoot(page, screenshots, "access")
    page.context.close()


def test_keyboard_tab_from_the_top_reaches_the_skip_link_first(chromium, console_server):
    page = _admin_page(chromium, console_server)
    for url in ("/console/repositories/", "/console/system/", "/console/people/"):
        page.goto(url)
        _built(page)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link", url
        assert page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main", url
    page.context.close()


def test_on_a_phone_the_pages_fit_the_screen_without_sideways_scrolling(chromium, console_server, pushed_image,
                                                                       screenshots):
    page = _admin_page(chromium, console_server, fx.PHONE)
    for name, url in (("repositories-phone", "/console/repositories/"),
                      ("repository-phone", f"/console/repositories/{pushed_image.repo_id}/"),
                      ("tasks-phone", "/console/tasks/"), ("system-phone", "/console/system/"),
                      ("people-phone", "/console/people/"),
                      ("access-phone", f"/console/repositories/{pushed_image.repo_id}/access")):
        page.goto(url)
        _built(page)
        _shoot(page, screenshots, name)
        width, scroll_width = page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]")
        assert scroll_width <= width, f"{url} is {scroll_width} px wide on a {width} px screen"
    page.context.close()
