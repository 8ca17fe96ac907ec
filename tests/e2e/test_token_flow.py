"""The Docker token flow end to end: ``pulp-registry dev`` with real clients (skopeo, podman).

Crane answers ``/v2/`` with a Bearer challenge naming the admin side's
``/token``; clients fetch a token there (with the credentials they hold, or
anonymously) and pull with it. A protected repository is pulled only with the
credentials of a user allowed to read it; a public one by anyone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.e2e.clients import crane_manifest, run, skopeo_push
from tests.images import build_oci_layout, manifest_digests, skopeo
from tests.servers import DevServer, poll

pytestmark = pytest.mark.e2e

LAYERS = [{"etc/motd": b"token flow\n", "data.bin": bytes(range(256)) * 64}]
READER, READER_PASSWORD = "token-reader", "token-reader-password"
OUTSIDER, OUTSIDER_PASSWORD = "token-outsider", "token-outsider-password"


def unique(stem: str) -> str:
    return f"e2e/{stem}-{uuid.uuid4().hex[:8]}"


def repository_id(server: DevServer, name: str) -> str:
    response = server.api("GET", "/pulp/api/v2/repositories/")
    response.raise_for_status()
    return next(repo["id"] for repo in response.json() if repo["name"] == name)


def anonymous_status(server: DevServer, name: str) -> int:
    """What Crane answers an anonymous manifest GET (no token at all)."""
    return crane_manifest(server, name, "v1").status_code


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return build_oci_layout(tmp_path_factory.mktemp("token-flow-image"), "v1", layers=LAYERS)


@pytest.fixture(scope="module")
def public_name(dev_server, layout) -> str:
    name = unique("token-public")
    skopeo_push(dev_server, f"oci:{layout}:v1", name, "v1")
    poll(lambda: anonymous_status(dev_server, name) == 200, 30, f"Crane serving {name}")
    return name


@pytest.fixture(scope="module")
def protected_name(dev_server, layout) -> str:
    """A repository pushed, then marked protected (the publish task that follows has finished)."""
    name = unique("token-secret")
    skopeo_push(dev_server, f"oci:{layout}:v1", name, "v1")
    repo_id = repository_id(dev_server, name)
    response = dev_server.api("PUT", f"/pulp/api/v2/repositories/{repo_id}/", json={"delta": {"protected": True}})
    assert response.status_code in (200, 202), response.text
    dev_server.wait_for_tasks()
    poll(lambda: anonymous_status(dev_server, name) == 401, 30, f"Crane protecting {name}")
    return name


@pytest.fixture(scope="module")
def users(dev_server, protected_name) -> None:
    """``token-reader`` may read the protected repository; ``token-outsider`` may read nothing."""
    for login, password in ((READER, READER_PASSWORD), (OUTSIDER, OUTSIDER_PASSWORD)):
        response = dev_server.api("POST", "/pulp/api/v2/users/",
                                  json={"login": login, "password": password, "roles": []})
        assert response.status_code in (200, 201), response.text
    resource = f"/pulp/api/v2/repositories/{repository_id(dev_server, protected_name)}/"
    response = dev_server.api("POST", "/pulp/api/v2/permissions/actions/grant_to_user/",
                              json={"login": READER, "resource": resource, "operations": ["READ"]})
    assert response.status_code == 200, response.text


@pytest.fixture
def auth_file(tmp_path, monkeypatch) -> Path:
    """A private credentials file for ``skopeo login`` / ``podman login`` (never the user's own)."""
    path = tmp_path / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(path))
    return path


def pull(server: DevServer, name: str, dest: Path, *creds: str) -> Path:
    skopeo("copy", "--src-tls-verify=false", *creds, f"docker://{server.registry_host}/{name}:v1", f"dir:{dest}")
    return dest


def refused(*args: str) -> str:
    with pytest.raises(RuntimeError) as failure:
        skopeo(*args)
    return str(failure.value)


# --- the challenge ------------------------------------------------------------------------------

def test_crane_sends_clients_to_the_admin_sides_token_endpoint(dev_server):
    response = requests.get(f"{dev_server.registry_url}/v2/", timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{dev_server.api_url}/token",service="pulp-registry"')
    token = requests.get(f"{dev_server.api_url}/token", params={"service": "pulp-registry"}, timeout=30)
    assert token.status_code == 200
    ping = requests.get(f"{dev_server.registry_url}/v2/", timeout=30,
                        headers={"Authorization": f"Bearer {token.json()['token']}"})
    assert ping.status_code == 200
    assert requests.get(f"{dev_server.registry_url}/", timeout=30).status_code == 200


# --- pulls --------------------------------------------------------------------------------------

def test_a_protected_repository_is_pulled_from_crane_with_credentials(dev_server, layout, protected_name, tmp_path):
    pulled = pull(dev_server, protected_name, tmp_path / "admin", "--src-creds", dev_server.creds)
    assert manifest_digests(pulled) == manifest_digests(layout, "v1")


def test_a_user_allowed_to_read_pulls_it_and_others_are_refused(dev_server, layout, protected_name, users,
                                                               tmp_path):
    pulled = pull(dev_server, protected_name, tmp_path / "reader", "--src-creds", f"{READER}:{READER_PASSWORD}")
    assert manifest_digests(pulled) == manifest_digests(layout, "v1")
    source = f"docker://{dev_server.registry_host}/{protected_name}:v1"
    message = refused("inspect", "--tls-verify=false", "--creds", f"{OUTSIDER}:{OUTSIDER_PASSWORD}", source)
    assert "does not grant pull" in message


def test_without_or_with_wrong_credentials_a_protected_repository_is_refused(dev_server, protected_name):
    source = f"docker://{dev_server.registry_host}/{protected_name}:v1"
    assert "unauthorized" in refused("inspect", "--tls-verify=false", "--no-creds", source)
    assert "invalid username or password" in refused("inspect", "--tls-verify=false", "--creds",
                                                     f"{dev_server.admin_username}:wrong", source)


def test_anyone_pulls_a_public_repository_with_an_anonymous_token(dev_server, layout, public_name, tmp_path):
    pulled = pull(dev_server, public_name, tmp_path / "anonymous", "--src-no-creds")
    assert manifest_digests(pulled) == manifest_digests(layout, "v1")


# --- logins -------------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ["registry", "api"])
def test_skopeo_login_works_with_the_right_password_and_fails_with_a_wrong_one(dev_server, auth_file, port):
    host = dev_server.registry_host if port == "registry" else dev_server.admin_host
    skopeo("login", "--tls-verify=false", "-u", dev_server.admin_username, "-p", dev_server.admin_password, host)
    assert host in json.loads(auth_file.read_text())["auths"]
    assert "invalid username/password" in refused("login", "--tls-verify=false", "-u", dev_server.admin_username,
                                                  "-p", "wrong", host)


@pytest.fixture
def podman_storage() -> Iterator[Path]:
    """Where podman keeps images for one test: short (podman refuses a runroot over 50 characters), removed after."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: scripts/test.sh installs it with apt-get", pytrace=False)
    storage = Path(tempfile.mkdtemp(prefix="podman-"))
    yield storage
    shutil.rmtree(storage, ignore_errors=True)


def podman(storage: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """podman with its own storage (vfs: no overlay mounts needed), never the system's."""
    options = ["--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", "vfs"]
    return run("podman", *options, *args, env=dict(os.environ), check=check)


@pytest.mark.parametrize("port", ["registry", "api"])
def test_podman_login_works_with_the_right_password_and_fails_with_a_wrong_one(dev_server, auth_file,
                                                                              podman_storage, port):
    host = dev_server.registry_host if port == "registry" else dev_server.admin_host
    podman(podman_storage, "login", "--tls-verify=false", "-u", dev_server.admin_username,
           "-p", dev_server.admin_password, host)
    assert host in json.loads(auth_file.read_text())["auths"]
    wrong = podman(podman_storage, "login", "--tls-verify=false", "-u", dev_server.admin_username, "-p", "wrong",
                   host, check=False)
    assert wrong.returncode != 0 and "invalid username/password" in wrong.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="podman pull as a normal user needs rootless podman "
                                              "(subuid/subgid mappings) set up for that user")
def test_podman_pulls_a_protected_image_with_the_login_it_stored(dev_server, auth_file, podman_storage, layout,
                                                                protected_name):
    image = f"{dev_server.registry_host}/{protected_name}:v1"
    anonymous = podman(podman_storage, "pull", "--tls-verify=false", image, check=False)
    assert anonymous.returncode != 0
    podman(podman_storage, "login", "--tls-verify=false", "-u", dev_server.admin_username,
           "-p", dev_server.admin_password, dev_server.registry_host)
    podman(podman_storage, "pull", "--tls-verify=false", image)
    inspected = json.loads(podman(podman_storage, "image", "inspect", image).stdout)[0]
    assert inspected["Digest"] == manifest_digests(layout, "v1").manifest_digest
