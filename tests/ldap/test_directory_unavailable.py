"""A directory that is down, silent, misconfigured or refuses the service account.

Each is DirectoryUnavailable, within the timeout, and no message shows a password.
"""
from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from pulp_registry.ldap_auth import DirectoryUnavailable, directory_login
from tests.ldap_server import SERVICE_PASSWORD, USERS, Slapd, run_slapd
from tests.servers import free_port

ALICE_PASSWORD = USERS["alice"][1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) but never answers a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_wrong_service_password_is_unavailable_and_never_shows_a_password(
        slapd: Slapd, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-" + SERVICE_PASSWORD
    caplog.set_level(logging.INFO, logger="pulp_registry.ldap_auth")

    with pytest.raises(DirectoryUnavailable) as raised:
        directory_login(slapd.settings(bind_password=wrong), "alice", ALICE_PASSWORD)

    message = str(raised.value)
    assert message.startswith(f"LDAP directory {slapd.ldap_url} is unavailable: ")
    assert "invalidCredentials" in message
    for secret in (wrong, ALICE_PASSWORD):
        assert secret not in message and secret not in caplog.text
    assert [record.levelname for record in caplog.records] == ["WARNING"]


def test_unknown_service_account_is_unavailable(slapd: Slapd) -> None:
    with pytest.raises(DirectoryUnavailable, match="service account cn=nobody"):
        directory_login(slapd.settings(bind_dn="cn=nobody,dc=example,dc=org"), "alice", ALICE_PASSWORD)


def test_closed_port_is_unavailable_at_once(slapd: Slapd) -> None:
    url = f"ldap://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(DirectoryUnavailable, match=rf"LDAP directory {url} is unavailable: .*refused"):
        directory_login(slapd.settings(url=url, timeout=2), "alice", ALICE_PASSWORD)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
def test_directory_that_never_answers_is_unavailable_within_the_timeout(
        slapd: Slapd, silent_port: int, scheme: str) -> None:
    settings = slapd.settings(url=f"{scheme}://127.0.0.1:{silent_port}", ca_file=str(slapd.ca_file), timeout=1)
    started = time.monotonic()

    with pytest.raises(DirectoryUnavailable):
        directory_login(settings, "alice", ALICE_PASSWORD)
    assert time.monotonic() - started < 3


def test_stopped_directory_is_unavailable_and_logins_work_again_once_it_is_back(tmp_path: Path) -> None:
    with run_slapd(tmp_path) as own_slapd:
        settings = own_slapd.settings(timeout=2)
        assert directory_login(settings, "alice", ALICE_PASSWORD) is not None

        own_slapd.stop()
        started = time.monotonic()
        with pytest.raises(DirectoryUnavailable, match=f"LDAP directory {own_slapd.ldap_url} is unavailable"):
            directory_login(settings, "alice", ALICE_PASSWORD)
        assert time.monotonic() - started < 3

        own_slapd.start()
        assert directory_login(settings, "alice", ALICE_PASSWORD) is not None


def test_user_search_base_that_does_not_exist_is_reported_not_taken_for_an_unknown_user(slapd: Slapd) -> None:
    settings = slapd.settings(user_search_base="ou=peeple,dc=example,dc=org")

    with pytest.raises(DirectoryUnavailable, match="ou=peeple.*noSuchObject"):
        directory_login(settings, "alice", ALICE_PASSWORD)


def test_malformed_user_filter_is_reported(slapd: Slapd) -> None:
    with pytest.raises(DirectoryUnavailable, match=r"invalid filter: \(uid=alice$"):
        directory_login(slapd.settings(user_filter="(uid={login}"), "alice", ALICE_PASSWORD)
