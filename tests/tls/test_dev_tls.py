"""``pulp-registry dev`` makes its CA at first start and, with ``--tls``, serves both ports over HTTPS.

Proven with real clients: skopeo pushes and pulls with the CA downloaded from
``/ca.crt`` and fails on x509 without it; ``docker manifest inspect`` (which
will not speak plain HTTP to a registry) works against the TLS port with the CA
where docker looks. The docker CLI counts 127.0.0.0/8 as an insecure registry
and skips certificate checks there, so the x509 failure without the CA is
shown with skopeo only.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
from urllib3.exceptions import InsecureRequestWarning

from tests.images import build_oci_layout, dir_manifest_digest, layout_manifest, skopeo
from tests.servers import ACTIVE_TASK_STATES, console_script, free_port, poll, stop_process

PASSWORD = "tls-admin-secret"
DOCKER_CERTS_D = Path("/etc/docker/certs.d")


@dataclass
class TlsDev:
    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    api_port: int
    registry_port: int

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def registry_url(self) -> str:
        return f"https://127.0.0.1:{self.registry_port}"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "certs" / "ca.crt"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"pulp-registry dev exited with {self.process.returncode}:\n{self.log()}")


@contextlib.contextmanager
def run_dev(tmp_path: Path, *extra: str) -> Iterator[TlsDev]:
    """``pulp-registry dev [--tls]`` on free ports; ready once both ports answer ``/`` over their scheme."""
    api_port, registry_port = free_port(), free_port()
    while registry_port == api_port:
        registry_port = free_port()
    log_path = tmp_path / f"dev-{api_port}.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PULP_REGISTRY_", "CRANE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [console_script("pulp-registry"), "dev", "--data-dir", str(tmp_path / "data"), "--api-port",
             str(api_port), "--registry-port", str(registry_port), "--admin-password", PASSWORD, *extra],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path)
    dev = TlsDev(process, tmp_path / "data", log_path, api_port, registry_port)
    scheme = "https" if "--tls" in extra else "http"
    try:
        def serving() -> bool:
            dev.check_alive()
            if "Stop with Ctrl+C" not in dev.log():
                return False
            for port in (api_port, registry_port):
                requests.get(f"{scheme}://127.0.0.1:{port}/", verify=str(dev.ca_file), timeout=5)
            return True

        poll(serving, 60, "pulp-registry dev serving both ports")
        yield dev
    except BaseException:
        print(f"----- pulp-registry dev log -----\n{dev.log()}")
        raise
    finally:
        stop_process(process)


@pytest.mark.slow
def test_dev_makes_its_ca_beside_its_token_keys_and_serves_it_on_both_ports(tmp_path):
    with run_dev(tmp_path) as dev:
        certs = dev.data_dir / "certs"
        assert sorted(path.name for path in certs.iterdir()) == ["ca.crt", "ca.key", "server.crt", "server.key"]
        assert stat.S_IMODE((certs / "server.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((certs / "ca.key").stat().st_mode) == 0o600
        assert (dev.data_dir / "keys").is_dir()
        for port in (dev.api_port, dev.registry_port):
            served = requests.get(f"http://127.0.0.1:{port}/ca.crt", timeout=10)
            assert served.status_code == 200
            assert served.headers["Content-Type"] == "application/x-x509-ca-cert"
            assert served.content == dev.ca_file.read_bytes()
        assert f"http://127.0.0.1:{dev.api_port}/ca.crt" in dev.log()
        first_ca = dev.ca_file.read_bytes()
    with run_dev(tmp_path) as again:   # a restart keeps the CA clients already trust
        assert again.ca_file.read_bytes() == first_ca


@pytest.fixture(scope="module")
def tls_dev(tmp_path_factory) -> Iterator[TlsDev]:
    if shutil.which("skopeo") is None or shutil.which("umoci") is None:
        pytest.skip("skopeo and umoci are needed (scripts/test.sh installs them)")
    with run_dev(tmp_path_factory.mktemp("tls-dev"), "--tls") as dev:
        yield dev


@pytest.fixture(scope="module")
def ca_dir(tls_dev, tmp_path_factory) -> Path:
    """A directory holding only ``ca.crt`` downloaded from the admin side, as skopeo's --cert-dir wants it."""
    directory = tmp_path_factory.mktemp("downloaded-ca")
    with warnings.catch_warnings():   # trust on first use, as `curl -k -O` does
        warnings.simplefilter("ignore", InsecureRequestWarning)
        response = requests.get(f"{tls_dev.api_url}/ca.crt", verify=False, timeout=10)
    assert response.status_code == 200
    assert response.content == tls_dev.ca_file.read_bytes()
    (directory / "ca.crt").write_bytes(response.content)
    return directory


@pytest.fixture(scope="module")
def pushed(tls_dev, ca_dir, tmp_path_factory) -> str:
    """``tls/app:v1`` pushed over HTTPS to the admin port with the downloaded CA; published; its digest."""
    layout = build_oci_layout(tmp_path_factory.mktemp("image"), "v1")
    digest, _ = layout_manifest(layout, "v1")
    skopeo("copy", "--dest-cert-dir", ca_dir, "--dest-creds", f"admin:{PASSWORD}", f"oci:{layout}:v1",
           f"docker://127.0.0.1:{tls_dev.api_port}/tls/app:v1")
    verify = str(ca_dir / "ca.crt")

    def published() -> bool:
        tls_dev.check_alive()
        tasks = requests.get(f"{tls_dev.api_url}/pulp/api/v2/tasks/", params={"state": ACTIVE_TASK_STATES},
                             auth=("admin", PASSWORD), verify=verify, timeout=10).json()
        served = requests.get(f"{tls_dev.registry_url}/v2/tls/app/manifests/v1", verify=verify, timeout=10,
                              headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        return not tasks and served.status_code == 200

    poll(published, 60, "tls/app:v1 published and served by Crane")
    return digest


@pytest.mark.slow
def test_the_banner_names_https_urls_and_the_ca_to_trust(tls_dev):
    text = tls_dev.log()
    assert f"https://127.0.0.1:{tls_dev.api_port}/pulp/api/v2/" in text
    assert f"https://127.0.0.1:{tls_dev.registry_port}/v2/" in text
    assert f"https://127.0.0.1:{tls_dev.api_port}/token" in text
    assert str(tls_dev.ca_file) in text
    assert "/etc/docker/certs.d/" in text and "/etc/containers/certs.d/" in text


@pytest.mark.slow
def test_both_ports_serve_the_ca_over_https_and_refuse_plain_http(tls_dev, ca_dir):
    for url in (tls_dev.api_url, tls_dev.registry_url):
        served = requests.get(f"{url}/ca.crt", verify=str(ca_dir / "ca.crt"), timeout=10)
        assert served.status_code == 200 and served.content == tls_dev.ca_file.read_bytes()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https://", "http://") + "/ca.crt", timeout=10)


@pytest.mark.slow
def test_skopeo_pushes_and_pulls_over_https_with_the_downloaded_ca(tls_dev, ca_dir, pushed, tmp_path):
    pulled = tmp_path / "pulled"
    skopeo("copy", "--src-cert-dir", ca_dir, f"docker://127.0.0.1:{tls_dev.registry_port}/tls/app:v1",
           f"dir:{pulled}")
    assert dir_manifest_digest(pulled) == pushed


@pytest.mark.slow
@pytest.mark.parametrize("port_name", ["registry_port", "api_port"])
def test_skopeo_without_the_ca_fails_on_the_certificate(tls_dev, pushed, tmp_path, port_name):
    empty_cert_dir = tmp_path / "no-ca"   # --cert-dir: only the system's roots, not /etc/{docker,containers}/certs.d
    empty_cert_dir.mkdir()
    result = subprocess.run(["skopeo", "inspect", "--cert-dir", str(empty_cert_dir), "--creds", f"admin:{PASSWORD}",
                             f"docker://127.0.0.1:{getattr(tls_dev, port_name)}/tls/app:v1"],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "x509" in result.stderr or "certificate" in result.stderr, result.stderr


@pytest.fixture
def docker_trusts_crane(tls_dev, ca_dir) -> Iterator[Path]:
    """The CA where the docker CLI looks for this registry: /etc/docker/certs.d/HOST:PORT/ca.crt (removed after)."""
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    if os.geteuid() != 0:
        pytest.skip("writing /etc/docker/certs.d needs root")
    made_certs_d = not DOCKER_CERTS_D.exists()
    host_dir = DOCKER_CERTS_D / f"127.0.0.1:{tls_dev.registry_port}"
    host_dir.mkdir(parents=True)
    shutil.copy(ca_dir / "ca.crt", host_dir / "ca.crt")
    try:
        yield host_dir
    finally:
        shutil.rmtree(host_dir)
        if made_certs_d:
            with contextlib.suppress(OSError):   # another test may have put its own host there meanwhile
                DOCKER_CERTS_D.rmdir()


def docker_manifest_inspect(reference: str, config_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}   # no credentials or settings of this machine's user
    return subprocess.run(["docker", "manifest", "inspect", reference], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_docker_manifest_inspect_works_against_the_tls_port_with_the_ca_in_certs_d(tls_dev, pushed,
                                                                                 docker_trusts_crane, tmp_path):
    import json

    result = docker_manifest_inspect(f"127.0.0.1:{tls_dev.registry_port}/tls/app:v1", tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["schemaVersion"] == 2
    assert manifest["config"]["digest"].startswith("sha256:")


@pytest.mark.slow
def test_docker_manifest_inspect_will_not_speak_plain_http(tmp_path):
    if shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")
    with run_dev(tmp_path) as dev:
        result = docker_manifest_inspect(f"127.0.0.1:{dev.registry_port}/tls/app:v1", tmp_path)
    assert result.returncode != 0
    assert "does not look like a TLS handshake" in result.stderr or "https://" in result.stderr, result.stderr
