"""Failed logins: rate-limited per login and per address, logged without secrets, refused alike."""
from __future__ import annotations

import logging

import bcrypt
import pytest

from pulp_registry import users
from tests.conftest import ADMIN_PASSWORD, basic_auth

WHOAMI = "/pulp/api/v2/whoami/"


@pytest.fixture
def limited(services):
    """A limit of 3 failures per 300 s."""
    from dataclasses import replace

    services.settings = replace(services.settings, login_failure_limit=3)
    return services


def test_too_many_failures_for_a_login_answer_429_with_retry_after_even_with_the_right_password(client, limited):
    for _ in range(3):
        assert client.get(WHOAMI, headers=basic_auth("admin", "wrong-guess")).status_code == 401
    blocked = client.get(WHOAMI, headers=basic_auth("admin", ADMIN_PASSWORD))
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 300
    assert blocked.get_json()["error"] == "too_many_requests"
    on_v2 = client.get("/v2/", headers=basic_auth("admin", ADMIN_PASSWORD))
    assert on_v2.status_code == 429 and on_v2.get_json()["errors"][0]["code"] == "TOOMANYREQUESTS"


def test_failures_from_one_address_block_that_address_for_every_login(client, limited, services):
    users.create_user(services.db, "gina", "gina-secret-pw", rounds=4)
    for login in ("x1", "x2", "x3"):
        client.get(WHOAMI, headers=basic_auth(login, "nope"), environ_base={"REMOTE_ADDR": "10.9.9.9"})
    blocked = client.get(WHOAMI, headers=basic_auth("gina", "gina-secret-pw"),
                         environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert blocked.status_code == 429
    elsewhere = client.get(WHOAMI, headers=basic_auth("gina", "gina-secret-pw"),
                           environ_base={"REMOTE_ADDR": "10.9.9.10"})
    assert elsewhere.status_code == 200


def test_a_failed_login_is_logged_with_the_login_and_address_but_never_the_password(client, caplog):
    with caplog.at_level(logging.WARNING):
        client.get(WHOAMI, headers=basic_auth("admin", "the-wrong-one-123"),
                   environ_base={"REMOTE_ADDR": "192.0.2.7"})
    text = caplog.text
    assert "failed login for 'admin' from 192.0.2.7" in text
    assert "the-wrong-one-123" not in text


def test_unknown_logins_cost_a_bcrypt_check_at_the_configured_cost(services):
    """An unknown login is refused after checking a dummy hash of the same cost as real ones."""
    dummy = users._dummy_hash(services.settings.bcrypt_rounds)
    real = services.db.users.find_one({"_id": "admin"})["password_hash"].encode()
    assert dummy[:7] == real[:7] == b"$2b$04$"
    assert users._dummy_hash(12)[:7] == b"$2b$12$"
    calls = []
    original = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed[:7])
        return original(password, hashed)

    bcrypt.checkpw = counting
    try:
        assert users.authenticate(services, "nobody-at-all", "whatever") is None
        assert users.authenticate(services, "admin", "wrong") is None
    finally:
        bcrypt.checkpw = original
    assert calls == [b"$2b$04$", b"$2b$04$"]


def test_remembered_credentials_are_salted_and_forgotten_when_the_password_changes(services):
    import hashlib
    from dataclasses import replace

    services.settings = replace(services.settings, credential_cache_seconds=60)
    assert users.authenticate(services, "admin", ADMIN_PASSWORD) is not None
    keys = list(users._verified._entries)
    plain = hashlib.sha256(f"admin\0{ADMIN_PASSWORD}".encode()).hexdigest()
    assert keys and plain not in keys and all(ADMIN_PASSWORD not in repr(entry)
                                              for entry in users._verified._entries.values())
    users.set_password(services.db, "admin", "another-admin-pw", rounds=4)
    assert users.authenticate(services, "admin", ADMIN_PASSWORD) is None
    assert users.authenticate(services, "admin", "another-admin-pw") is not None
