"""Logging in to the console: the form, the session cookie, CSRF, logout and where a login leads."""
from __future__ import annotations

from pulp_registry import api_tokens
from pulp_registry.permissions import SUPER_USERS
from pulp_registry.users import create_user, delete_user

from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.console.conftest import csrf_token, log_in


def test_a_page_without_login_leads_to_the_login_form_and_back(client):
    response = client.get("/console/tasks/?state=running")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/console/login?next=")
    assert "Log in" in client.get(response.headers["Location"]).get_data(as_text=True)

    done = log_in(client, ADMIN_LOGIN, ADMIN_PASSWORD, next_page="/console/tasks/?state=running")
    assert done.status_code == 302 and done.headers["Location"] == "/console/tasks/?state=running"


def test_a_wrong_password_is_refused_on_the_form_and_logs_nobody_in(client):
    response = log_in(client, ADMIN_LOGIN, "not-the-password")
    assert response.status_code == 401
    assert "Invalid username or password" in response.get_data(as_text=True)
    assert client.get("/console/repositories/").status_code == 302


def test_the_session_cookie_is_httponly_samesite_and_secure_only_over_tls(app):
    plain = app.test_client()
    cookie = log_in(plain, ADMIN_LOGIN, ADMIN_PASSWORD).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie

    tls = app.test_client()
    page = tls.get("/console/login", base_url="https://registry.example")
    response = tls.post("/console/login", base_url="https://registry.example", headers={
        "Referer": "https://registry.example/console/login"}, data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "username": ADMIN_LOGIN, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_the_cookie_holds_no_password_and_no_role(app):
    client = app.test_client()
    cookie = log_in(client, ADMIN_LOGIN, ADMIN_PASSWORD).headers["Set-Cookie"]
    assert ADMIN_PASSWORD not in cookie and SUPER_USERS not in cookie


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(console, services):
    response = console.post("/console/logout")
    assert response.status_code == 400
    assert "reload the page" in response.get_data(as_text=True)
    assert console.get("/console/repositories/").status_code == 200  # still logged in

    stranger = console.application.test_client()
    forged = stranger.post("/console/login", data={"username": ADMIN_LOGIN, "password": ADMIN_PASSWORD})
    assert forged.status_code == 400
    assert stranger.get("/console/repositories/").status_code == 302


def test_logging_out_revokes_the_session_everywhere(console, services):
    assert services.db.api_tokens.count_documents({"login": ADMIN_LOGIN}) == 1
    page = console.get("/console/repositories/").get_data(as_text=True)
    response = console.post("/console/logout", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert services.db.api_tokens.count_documents({"login": ADMIN_LOGIN}) == 0
    assert console.get("/console/repositories/").status_code == 302


def test_a_deleted_user_is_logged_out_at_the_next_click(app, services):
    create_user(services.db, "alice", "alice-password", rounds=4)
    client = app.test_client()
    assert log_in(client, "alice", "alice-password").status_code == 302
    assert client.get("/console/repositories/").status_code == 200
    delete_user(services.db, "alice")
    assert client.get("/console/repositories/").status_code == 302


def test_login_never_sends_the_browser_to_another_site(app):
    for target in ("https://evil.example/console/", "//evil.example/console", "/pulp/api/v2/users/"):
        response = log_in(app.test_client(), ADMIN_LOGIN, ADMIN_PASSWORD, next_page=target)
        assert response.headers["Location"] == "/console/repositories/", target


def test_the_console_session_is_an_api_token_that_expires(app, services, settings):
    client = app.test_client()
    log_in(client, ADMIN_LOGIN, ADMIN_PASSWORD)
    token_doc = services.db.api_tokens.find_one({"login": ADMIN_LOGIN})
    services.db.api_tokens.update_one({"_id": token_doc["_id"]}, {"$set": {"expires": token_doc["created"]}})
    assert client.get("/console/repositories/").status_code == 302
    assert api_tokens.resolve(services.db, "prt_unknown") is None
