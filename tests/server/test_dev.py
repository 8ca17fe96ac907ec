"""``pulp-registry dev``: one process serves the admin API and Crane on 127.0.0.1 and stops cleanly on a signal."""
from __future__ import annotations

import signal
import socket
import stat
from pathlib import Path

import pytest
import requests

from tests.server.devprocess import GENERATED_PASSWORD_RE, dev_process, run_command

PASSWORD = "dev-test-password"
AUTH = ("admin", PASSWORD)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """One running ``pulp-registry dev --admin-password`` for the checks that do not stop it."""
    tmp_path = tmp_path_factory.mktemp("dev")
    with dev_process(tmp_path, "--admin-password", PASSWORD) as server:
        server.wait_until_serving(AUTH)
        yield server


def test_admin_api_status_answers_with_the_given_admin_password(dev):
    response = requests.get(dev.status_url, auth=AUTH, timeout=10)
    assert response.status_code == 200, response.text


def test_crane_answers_the_registry_base_endpoint_with_a_challenge_naming_the_admin_ports_token_endpoint(dev):
    response = requests.get(f"{dev.registry_url}/v2/", timeout=10)
    assert response.status_code == 401
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{dev.api_url}/token",service="pulp-registry"'
    assert requests.get(f"{dev.registry_url}/", timeout=10).status_code == 200


def test_a_token_from_the_admin_port_opens_crane(dev):
    token = requests.get(f"{dev.api_url}/token", params={"service": "pulp-registry"}, auth=AUTH, timeout=10)
    assert token.status_code == 200, token.text
    response = requests.get(f"{dev.registry_url}/v2/", timeout=10,
                            headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert response.status_code == 200


def test_the_token_signing_key_is_made_under_the_data_dir_for_the_owner_only(dev):
    keys = dev.data_dir / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "token-signing.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "token-public.pem").stat().st_mode) == 0o644
    assert (f"tokens:       {dev.api_url}/token   (signed with {keys / 'token-signing.pem'}; "
            f"Crane checks them with {keys / 'token-public.pem'})") in dev.stdout()
    assert "BEGIN" not in dev.stdout() + dev.stderr(), "no key material is printed"


def test_wrong_or_missing_credentials_get_401(dev):
    assert requests.get(dev.status_url, auth=("admin", "wrong"), timeout=10).status_code == 401
    assert requests.get(dev.status_url, auth=("nobody", PASSWORD), timeout=10).status_code == 401
    assert requests.get(dev.status_url, timeout=10).status_code == 401


def test_push_endpoint_on_the_admin_port_wants_credentials(dev):
    assert requests.get(f"{dev.api_url}/v2/", timeout=10).status_code == 401
    assert requests.get(f"{dev.api_url}/v2/", auth=AUTH, timeout=10).status_code == 200


def test_startup_text_names_every_url_the_data_dir_and_that_memory_metadata_is_lost(dev):
    text = dev.stdout()
    assert f"http://127.0.0.1:{dev.api_port}/pulp/api/v2/" in text
    assert f"push to:      127.0.0.1:{dev.api_port}" in text
    assert f"pull from:    127.0.0.1:{dev.registry_port}" in text
    assert f"http://127.0.0.1:{dev.registry_port}/v2/" in text
    assert str(dev.data_dir) in text
    assert "admin login:  admin / the password given with --admin-password" in text
    assert "IN MEMORY (mongomock)" in text and "GONE when this" in text
    assert "restart starts with an empty database" in text
    assert PASSWORD not in text + dev.stderr(), "a password given on the command line is not echoed"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from the kernel's table (Linux)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:
                    addresses.add(address)
    return addresses


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_both_servers_listen_on_127_0_0_1_only(dev):
    loopback = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    assert listening_addresses(dev.api_port) == {loopback}
    assert listening_addresses(dev.registry_port) == {loopback}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_servers_and_worker_with_exit_status_0(tmp_path, signum):
    with dev_process(tmp_path, "--admin-password", PASSWORD) as server:
        server.wait_until_serving(AUTH)
        assert server.stop(signum) == 0, server.stderr()
        assert "stopped" in server.stdout()
        assert "content kept in" in server.stdout()
        with pytest.raises(requests.ConnectionError):
            requests.get(server.status_url, timeout=5)


def test_without_admin_password_a_generated_one_is_printed_once_and_works(tmp_path):
    with dev_process(tmp_path) as server:
        server.wait_until_serving(auth=None)
        text = server.stdout()
        match = GENERATED_PASSWORD_RE.search(text)
        assert match, text
        password = match.group(1)
        assert (text + server.stderr()).count(password) == 1
        assert requests.get(server.status_url, auth=("admin", password), timeout=10).status_code == 200
        assert requests.get(server.status_url, auth=("admin", password + "x"), timeout=10).status_code == 401
        assert server.stop(signal.SIGTERM) == 0


def test_restart_on_mongomock_starts_with_empty_metadata_but_content_files_stay(tmp_path):
    data_dir = tmp_path / "data"
    with dev_process(tmp_path, "--admin-password", PASSWORD, data_dir=data_dir) as first:
        first.wait_until_serving(AUTH)
        created = requests.post(f"{first.api_url}/pulp/api/v2/repositories/", json={"name": "kept/nothing"},
                                auth=AUTH, timeout=10)
        assert created.status_code == 201, created.text
        assert first.stop(signal.SIGTERM) == 0
    signing_key = (data_dir / "keys" / "token-signing.pem").read_bytes()
    marker = data_dir / "content" / "left-by-first-run"
    marker.write_text("x")
    with dev_process(tmp_path, "--admin-password", "another-password", data_dir=data_dir) as second:
        second.wait_until_serving(("admin", "another-password"))
        listed = requests.get(f"{second.api_url}/pulp/api/v2/repositories/", auth=("admin", "another-password"),
                              timeout=10)
        assert listed.status_code == 200 and listed.json() == []
        assert marker.exists()
        assert (data_dir / "keys" / "token-signing.pem").read_bytes() == signing_key, "the token key is kept"
        assert second.stop(signal.SIGTERM) == 0


def test_an_unusable_token_key_stops_startup_with_a_message_naming_it(tmp_path):
    keys = tmp_path / "data" / "keys"
    keys.mkdir(parents=True)
    (keys / "token-signing.pem").write_text("not a key\n")
    result = run_command(["dev", "--data-dir", str(tmp_path / "data"), "--admin-password", PASSWORD], timeout=60)
    assert result.returncode == 2
    assert f"token_private_key: {keys / 'token-signing.pem'} is not an unencrypted PEM private key" in result.stderr


def test_a_busy_port_stops_startup_with_a_message_naming_it(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_command(["dev", "--data-dir", str(tmp_path / "data"), "--api-port", str(port),
                              "--admin-password", PASSWORD], timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} for the admin API" in result.stderr
