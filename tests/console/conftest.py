"""Console fixtures: a Flask test client logged in through the login form, and the CSRF token of a page."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The CSRF token a console page puts in its forms."""
    found = _CSRF_RE.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client: Any, login: str, password: str, next_page: str = "") -> Any:
    """Log in through the form as a browser would; the response of the POST (not followed)."""
    page = client.get("/console/login")
    form = {"csrf_token": csrf_token(page.get_data(as_text=True)), "username": login, "password": password}
    if next_page:
        form["next"] = next_page
    return client.post("/console/login", data=form)


def post_form(client: Any, page_url: str, action: str, data: dict[str, str] | None = None) -> Any:
    """Send a form of ``page_url`` to ``action`` with the page's CSRF token, as a browser would."""
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **(data or {})})


@pytest.fixture
def console(app: Any) -> Any:
    """A test client logged in to the console as the super-user ``admin``."""
    client = app.test_client()
    response = log_in(client, ADMIN_LOGIN, ADMIN_PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client
