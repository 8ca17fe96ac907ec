"""StartTLS and LDAPS with the test CA: certificates are verified; a bad one is an outage, not a wrong password."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from pulp_registry.ldap_auth import DirectoryUnavailable, directory_login
from tests.ldap_server import USERS, Slapd, group_dn, make_certificates, run_slapd, user_dn

ALICE_PASSWORD = USERS["alice"][1]


def test_start_tls_with_the_directorys_ca_logs_in(slapd: Slapd) -> None:
    settings = slapd.settings(start_tls=True, ca_file=str(slapd.ca_file), group_roles={"developers": ["push"]})

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and (user.dn, user.groups, user.roles) == (
        user_dn("alice"), (group_dn("developers"),), ("push",))
    assert directory_login(settings, "alice", "wrong") is None


def test_ldaps_with_the_directorys_ca_logs_in(slapd: Slapd) -> None:
    settings = slapd.settings(url=slapd.ldaps_url, ca_file=str(slapd.ca_file), nested_groups=True)

    user = directory_login(settings, "alice", ALICE_PASSWORD)

    assert user is not None and user.dn == user_dn("alice") and group_dn("company") in user.groups
    assert directory_login(settings, "alice", "wrong") is None


def test_ldaps_with_the_system_store_only_is_unavailable_not_a_wrong_password(slapd: Slapd) -> None:
    with pytest.raises(DirectoryUnavailable, match="certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
        directory_login(slapd.settings(url=slapd.ldaps_url), "alice", ALICE_PASSWORD)


def test_ldaps_with_another_ca_is_unavailable_not_a_wrong_password(slapd: Slapd, tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path).ca_file
    settings = slapd.settings(url=slapd.ldaps_url, ca_file=str(other_ca))

    with pytest.raises(DirectoryUnavailable, match=rf"LDAP directory {slapd.ldaps_url} is unavailable"):
        directory_login(settings, "alice", ALICE_PASSWORD)


def test_start_tls_with_another_ca_is_unavailable_before_any_password_is_sent(slapd: Slapd, tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path).ca_file
    settings = slapd.settings(start_tls=True, ca_file=str(other_ca))

    with pytest.raises(DirectoryUnavailable, match="StartTLS|certificate") as raised:
        directory_login(settings, "alice", ALICE_PASSWORD)
    assert settings.bind_password not in str(raised.value)


def test_start_tls_against_the_ldaps_port_is_unavailable(slapd: Slapd) -> None:
    settings = slapd.settings(url=f"ldap://127.0.0.1:{slapd.ldaps_port}", start_tls=True, ca_file=str(slapd.ca_file),
                              timeout=2)

    with pytest.raises(DirectoryUnavailable):
        directory_login(settings, "alice", ALICE_PASSWORD)


@pytest.fixture(scope="module")
def slapd_for_another_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """A slapd on 127.0.0.1 whose certificate (from the usual CA) names only ldap.example.org."""
    with run_slapd(tmp_path_factory.mktemp("slapd-other-host"), certificate_hosts=("ldap.example.org",),
                   certificate_addresses=()) as server:
        yield server


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
def test_certificate_for_another_host_is_unavailable(slapd_for_another_host: Slapd, transport: str) -> None:
    server = slapd_for_another_host
    url = server.ldaps_url if transport == "ldaps" else server.ldap_url
    settings = server.settings(url=url, start_tls=transport == "start_tls", ca_file=str(server.ca_file))

    with pytest.raises(DirectoryUnavailable, match="doesn't match"):
        directory_login(settings, "alice", ALICE_PASSWORD)
