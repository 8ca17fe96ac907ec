"""TLS in production servers: ``crane`` and ``pulp-registry api`` under gunicorn with tls_certificate/tls_key."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from crane.cli import main as crane_main
from pulp_registry.certs import CertificatePaths, init_certificates
from pulp_registry.config import ConfigError, Settings
from pulp_registry.gunicorn_server import tls_options
from pulp_registry.publish import prepare_published_tree
from tests.server.devprocess import clean_environment, run_command
from tests.servers import console_script, free_port, poll, stop_process


@pytest.fixture
def certs(tmp_path: Path) -> CertificatePaths:
    return init_certificates(tmp_path / "certs", ["localhost"], ["127.0.0.1"])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    published = tmp_path / "published"
    prepare_published_tree(published)
    return published


def test_tls_options_give_gunicorn_the_certificate_and_key(certs):
    assert tls_options(str(certs.server_certificate), str(certs.server_key)) == {
        "certfile": str(certs.server_certificate), "keyfile": str(certs.server_key)}
    assert tls_options("", "") == {}


def test_a_key_that_does_not_match_the_certificate_is_refused(certs, tmp_path):
    other = init_certificates(tmp_path / "other", ["localhost"])
    with pytest.raises(ConfigError, match="not a PEM certificate and its private key"):
        tls_options(str(certs.server_certificate), str(other.server_key))


def test_the_admin_api_server_serves_tls_with_the_settings_files(certs, tmp_path):
    from pulp_registry.wsgi import admin_api_server

    settings = Settings(data_dir=str(tmp_path / "data"), tls_certificate=str(certs.server_certificate),
                        tls_key=str(certs.server_key))
    server = admin_api_server(settings)
    assert server.cfg.is_ssl
    assert (server.cfg.certfile, server.cfg.keyfile) == (str(certs.server_certificate), str(certs.server_key))
    assert not admin_api_server(Settings(data_dir=str(tmp_path / "data"))).cfg.is_ssl


def test_pulp_registry_api_with_an_unreadable_certificate_stops_in_one_line(certs, tmp_path):
    env = clean_environment(PULP_REGISTRY_DATA_DIR=str(tmp_path / "data"),
                            PULP_REGISTRY_MONGO_URL="mongodb://127.0.0.1:1/",
                            PULP_REGISTRY_BROKER_URL="redis://127.0.0.1:1/0",
                            PULP_REGISTRY_TLS_CERTIFICATE=str(tmp_path / "missing.crt"),
                            PULP_REGISTRY_TLS_KEY=str(certs.server_key))
    result = run_command(["api", "--bind", "127.0.0.1:1"], env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"pulp-registry: configuration error: tls_certificate/tls_key: cannot read {tmp_path / 'missing.crt'}: "
        "No such file or directory"]


def test_crane_with_one_tls_file_without_the_other_refuses_to_start(tree, certs):
    result = CliRunner().invoke(crane_main, ["--data-dir", str(tree)],
                                env={"CRANE_TLS_CERTIFICATE": str(certs.server_certificate)})
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: configuration: tls_key: required with tls_certificate "
                                     "(set both to serve TLS, or neither)")


def test_crane_with_an_unreadable_key_refuses_to_start_in_one_line(tree, certs, tmp_path):
    result = CliRunner().invoke(crane_main, ["--data-dir", str(tree)], env={
        "CRANE_TLS_CERTIFICATE": str(certs.server_certificate), "CRANE_TLS_KEY": str(tmp_path / "nope.key")})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: configuration: tls_certificate/tls_key: cannot read {tmp_path / 'nope.key'}: "
        "No such file or directory"]


@pytest.mark.slow
def test_crane_under_gunicorn_serves_https_and_its_ca(tree, certs, tmp_path):
    port = free_port()
    env = clean_environment(CRANE_TLS_CERTIFICATE=str(certs.server_certificate), CRANE_TLS_KEY=str(certs.server_key),
                            CRANE_CA_CERTIFICATE=str(certs.ca_certificate))
    log = tmp_path / "crane.log"
    with log.open("wb") as output:
        process = subprocess.Popen([console_script("crane"), "--data-dir", str(tree), "--bind", f"127.0.0.1:{port}",
                                    "--workers", "1"], stdout=output, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL)

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"crane exited with {process.returncode}:\n{log.read_text()}")

    try:
        url = f"https://127.0.0.1:{port}"
        poll(lambda: alive() or requests.get(f"{url}/", verify=str(certs.ca_certificate), timeout=5).ok, 30,
             "crane answering over https")
        served = requests.get(f"{url}/ca.crt", verify=str(certs.ca_certificate), timeout=10)
        assert served.status_code == 200 and served.content == certs.ca_certificate.read_bytes()
        assert requests.get(f"{url}/v2/", verify=str(certs.ca_certificate), timeout=10).status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/v2/", timeout=10)   # the system's trust store does not know this CA
        assert f"on https://127.0.0.1:{port}/v2/" in log.read_text()
    finally:
        stop_process(process)
