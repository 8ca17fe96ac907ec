"""The system page: the same health figures as GET /pulp/api/v2/status/, the read-only state, the CA
download and the help card with the real host names."""
from __future__ import annotations

import dataclasses
import html as html_lib
from datetime import timedelta
from pathlib import Path

import pytest

from pulp_registry import maintenance, tasks
from pulp_registry.api.health import Readiness
from pulp_registry.db import utcnow
from pulp_registry.users import create_user
from pulp_registry.worker_heartbeats import record_heartbeat

from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.console.conftest import csrf_token, log_in


def _page(client, **kwargs) -> str:
    response = client.get("/console/system/", **kwargs)
    assert response.status_code == 200
    return html_lib.unescape(response.get_data(as_text=True))


def test_any_logged_in_user_sees_the_system_page(app, services):
    create_user(services.db, "nobody-special", "a-long-password", rounds=4)
    client = app.test_client()
    assert log_in(client, "nobody-special", "a-long-password").status_code == 302
    page = _page(client)
    assert "<h1>System</h1>" in page and 'aria-current="page">System<' in page


def test_the_page_needs_a_login(client):
    response = client.get("/console/system/")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


def test_health_workers_queue_and_version_are_those_of_the_status_api(console, client, auth, services):
    record_heartbeat(services.db, "worker-1@host")
    services.db.workers.update_one({"_id": "worker-2@host"},
                                   {"$set": {"last_heartbeat": utcnow() - timedelta(minutes=5)}}, upsert=True)
    tasks.create_task(services.db, "publish", ["repository:a"], {})
    tasks.create_task(services.db, "publish", ["repository:b"], {})
    status = client.get("/pulp/api/v2/status/", headers=auth).get_json()
    page = _page(console)
    assert "The registry is healthy." in page
    assert "<dt>Database</dt><dd class=\"ok\">connected</dd>" in page
    assert "<dt>Broker</dt><dd class=\"ok\">connected</dd>" in page
    assert "1 of 2" in page  # workers online
    assert f"<dt>Tasks waiting</dt><dd>{status['queue']['waiting']}</dd>" in page and status["queue"]["waiting"] == 2
    assert f"<dt>Version</dt><dd>{status['version']}</dd>" in page
    online, offline = status["workers"]
    assert f"<code>{online['id']}</code>" in page and online["last_heartbeat"] in page
    assert f"<code>{offline['id']}</code>" in page and "offline" in page


def test_an_unreachable_broker_and_no_worker_are_shown_as_problems(console, monkeypatch):
    monkeypatch.setattr(Readiness, "results", lambda self: {"database": True, "broker": False})
    page = _page(console)
    assert "Something needs attention" in page
    assert "<dt>Broker</dt><dd class=\"bad\">unreachable</dd>" in page
    assert "No worker has reported" in page


def test_a_database_that_does_not_answer_leaves_the_rest_unknown(console, monkeypatch):
    monkeypatch.setattr(Readiness, "results", lambda self: {"database": False, "broker": True})
    page = _page(console)
    assert "<dt>Database</dt><dd class=\"bad\">unreachable</dd>" in page
    assert "<dt>Tasks waiting</dt><dd>—</dd>" in page
    assert "Unknown (the database does not answer)" in page


def test_the_read_only_state_is_shown_with_its_reason(console, services):
    assert "Off: pushes, syncs and changes are accepted." in _page(console)
    maintenance.enter_read_only(services.db, "moving the disks", user="admin")
    page = _page(console)
    assert "Reason: moving the disks" in page and "by admin" in page
    assert "Read-only maintenance mode: moving the disks" in page  # the banner of every page


def test_without_a_ca_certificate_the_page_says_how_to_make_one(console):
    page = _page(console)
    assert 'href="/ca.crt"' not in page
    assert "No CA certificate is configured" in page


def test_the_ca_certificate_download_is_linked_when_one_is_configured(console, settings, client):
    ca_file = Path(settings.data_dir) / "certs" / "ca.crt"
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    ca_file.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    page = _page(console)
    assert '<a href="/ca.crt" download="ca.crt">' in page
    assert client.get("/ca.crt").status_code == 200  # the link leads to the real download


def test_the_help_card_uses_the_host_the_browser_reached_and_the_pull_host(app, settings):
    browser, base = app.test_client(), "http://registry.example:8443"
    form = {"csrf_token": csrf_token(browser.get("/console/login", base_url=base).get_data(as_text=True)),
            "username": ADMIN_LOGIN, "password": ADMIN_PASSWORD}
    assert browser.post("/console/login", base_url=base, data=form).status_code == 302
    page = _page(browser, base_url=base)
    assert 'value="docker login registry.example:8443"' in page
    assert 'value="docker push registry.example:8443/NAME:TAG"' in page
    assert 'value="registry-admin login --url http://registry.example:8443"' in page
    assert f'value="docker pull {settings.pull_host}/NAME:TAG"' in page
    assert 'data-copy-target="help-docker-pull"' in page
    assert "insecure-registries" in page


class TestPublicNames:
    @pytest.fixture
    def settings(self, settings):
        return dataclasses.replace(settings, api_public_url="https://admin.example.com",
                                   crane_public_url="https://pull.example.com")

    def test_the_help_card_uses_the_configured_public_names(self, console):
        page = _page(console)
        assert 'value="docker login admin.example.com"' in page
        assert 'value="docker push admin.example.com/NAME:TAG"' in page
        assert 'value="registry-admin login --url https://admin.example.com"' in page
        assert 'value="docker pull pull.example.com/NAME:TAG"' in page
        assert "insecure-registries" not in page


def test_the_rest_status_output_is_unchanged(client, auth):
    status = client.get("/pulp/api/v2/status/", headers=auth).get_json()
    assert set(status) == {"api_version", "versions", "version", "database", "messaging", "known_workers",
                           "workers", "queue", "read_only", "pull_host", "pull_url"}
