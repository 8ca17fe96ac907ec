"""Bad input through real clients: the client fails saying why, and the registry holds nothing new."""
from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
import requests

from tests.e2e.clients import registry_admin, repository_names
from tests.images import build_oci_layout, docker_archive_from_layout, layout_manifest

pytestmark = pytest.mark.e2e


def skopeo_copy(*args: str):
    """skopeo that may fail: returns the finished process instead of raising."""
    return subprocess.run(["skopeo", "--insecure-policy", "copy", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300, check=False)


def admin_token(server, name: str) -> dict[str, str]:
    """A Bearer token for pulling ``name`` as the admin (Crane hides unknown names from others: 401)."""
    response = requests.get(f"{server.api_url}/token", auth=server.auth, timeout=30,
                            params={"service": "pulp-registry", "scope": f"repository:{name}:pull"})
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


def assert_nothing_published(server, name: str) -> None:
    """Crane knows no tag of ``name`` and the admin side has no tag for it."""
    token = admin_token(server, name)
    assert requests.get(f"{server.registry_url}/v2/{name}/manifests/v1", headers=token, timeout=30).status_code == 404
    assert requests.get(f"{server.registry_url}/v2/{name}/tags/list", headers=token, timeout=30).status_code == 404
    admin_tags = requests.get(f"{server.api_url}/v2/{name}/tags/list", auth=server.auth, timeout=30)
    assert admin_tags.status_code == 404 or admin_tags.json().get("tags") in (None, [])


def tamper_same_size(blob_path) -> None:
    """Change one byte of a blob: same size, another digest."""
    data = bytearray(blob_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob_path.write_bytes(bytes(data))


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the client failed without saying why"
    assert lines[-1].startswith("registry-admin: error:"), stderr
    return lines[-1]


@pytest.mark.parametrize("creds", ["admin:wrong-password", "nobody:whatever"])
def test_skopeo_push_with_wrong_credentials_fails_and_creates_nothing(dev_server, repo_name, tmp_path, creds):
    layout = build_oci_layout(tmp_path, "v1")

    result = skopeo_copy("--dest-tls-verify=false", "--dest-creds", creds,
                         f"oci:{layout}:v1", f"docker://{dev_server.admin_host}/{repo_name}:v1")

    assert result.returncode != 0
    assert "401" in result.stderr or "unauthorized" in result.stderr.lower()
    assert repo_name not in repository_names(dev_server)
    assert_nothing_published(dev_server, repo_name)


def test_skopeo_push_without_credentials_is_refused(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")

    result = skopeo_copy("--dest-tls-verify=false", "--dest-no-creds", f"oci:{layout}:v1",
                         f"docker://{dev_server.admin_host}/{repo_name}:v1")

    assert result.returncode != 0
    assert repo_name not in repository_names(dev_server)


def test_skopeo_push_of_a_corrupted_layer_fails_and_tags_nothing(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    _, manifest = layout_manifest(layout, "v1")
    layer = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":", 1)[1]
    tamper_same_size(layer)

    result = skopeo_copy("--dest-tls-verify=false", "--dest-creds", dev_server.creds,
                         f"oci:{layout}:v1", f"docker://{dev_server.admin_host}/{repo_name}:v1")

    assert result.returncode != 0
    assert "digest" in result.stderr.lower()
    assert_nothing_published(dev_server, repo_name)


def test_pulling_an_unknown_tag_from_crane_fails_with_manifest_unknown(dev_server, repo_name, tmp_path):
    # As the admin: to anyone who may not pull a name, Crane answers 401 whether it exists or not.
    result = skopeo_copy("--src-tls-verify=false", "--src-creds", dev_server.creds,
                         f"docker://{dev_server.registry_host}/{repo_name}:v1", f"dir:{tmp_path / 'pulled'}")

    assert result.returncode != 0
    assert "manifest unknown" in result.stderr.lower() or "name unknown" in result.stderr.lower()
    assert not (tmp_path / "pulled" / "manifest.json").exists()


def test_registry_admin_with_wrong_password_fails_in_one_line_and_creates_nothing(dev_server, repo_name,
                                                                                   tmp_path):
    layout = build_oci_layout(tmp_path, "v1")

    result = registry_admin(dev_server, "--non-interactive", "push", f"{repo_name}:v1", "--archive", layout,
                            check=False, REGISTRY_ADMIN_PASSWORD="wrong-password")

    assert result.returncode != 0
    one_line_error(result.stderr)
    assert repo_name not in repository_names(dev_server)
    assert_nothing_published(dev_server, repo_name)


def _rewrite_archive(source, dest, extra_member: tuple[str, bytes] | None = None, layer_path: str | None = None):
    """Copy a docker save tar, adding a member or pointing its manifest.json at another layer path."""
    with tarfile.open(source) as original, tarfile.open(dest, "w") as rewritten:
        for member in original.getmembers():
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json" and layer_path is not None:
                entries = json.loads(data)
                entries[0]["Layers"][0] = layer_path
                data = json.dumps(entries).encode()
                member.size = len(data)
            rewritten.addfile(member, io.BytesIO(data) if data is not None else None)
        if extra_member is not None:
            info = tarfile.TarInfo(extra_member[0])
            info.size = len(extra_member[1])
            rewritten.addfile(info, io.BytesIO(extra_member[1]))
    return dest


@pytest.mark.parametrize("escape", ["member", "manifest-path"])
def test_registry_admin_refuses_an_archive_with_paths_outside_its_root(dev_server, repo_name, tmp_path, escape):
    layout = build_oci_layout(tmp_path, "v1")
    archive = docker_archive_from_layout(layout, "v1", tmp_path / "good.tar", f"{repo_name}:v1")
    if escape == "member":
        bad = _rewrite_archive(archive, tmp_path / "bad.tar", extra_member=("../escaped.txt", b"outside"))
    else:
        bad = _rewrite_archive(archive, tmp_path / "bad.tar", layer_path="../../etc/passwd")

    result = registry_admin(dev_server, "--non-interactive", "push", f"{repo_name}:v1", "--archive", bad,
                            check=False)

    assert result.returncode != 0
    one_line_error(result.stderr)
    assert repo_name not in repository_names(dev_server)
    assert_nothing_published(dev_server, repo_name)


def test_registry_admin_refuses_a_layer_whose_digest_does_not_match(dev_server, repo_name, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    _, manifest = layout_manifest(layout, "v1")
    layer = layout / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":", 1)[1]
    tamper_same_size(layer)

    result = registry_admin(dev_server, "--non-interactive", "push", f"{repo_name}:v1", "--archive", layout,
                            check=False)

    assert result.returncode != 0
    assert "digest" in one_line_error(result.stderr).lower()
    assert repo_name not in repository_names(dev_server)
    assert_nothing_published(dev_server, repo_name)


def test_registry_admin_names_an_invalid_repository_name(dev_server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")

    result = registry_admin(dev_server, "--non-interactive", "push", "Bad/Name:v1", "--archive", layout,
                            check=False)

    assert result.returncode != 0
    assert "Bad/Name" in one_line_error(result.stderr)


def test_registry_admin_without_archive_and_without_docker_engine_says_so(dev_server, repo_name):
    result = registry_admin(dev_server, "--non-interactive", "push", f"{repo_name}:v1", check=False,
                            DOCKER_HOST="unix:///nonexistent/docker.sock")

    assert result.returncode != 0
    error = one_line_error(result.stderr)
    assert "docker" in error.lower() and "--archive" in error
    assert repo_name not in repository_names(dev_server)
