"""A full disk: pushes answer 507 saying so, keep nothing partial, and work again once space is freed.

``pulp-registry dev`` runs with its data on a 20 MiB tmpfs mounted in a private
mount namespace (``unshare``), so the disk really fills up; the test looks into
that namespace with ``nsenter``. Needs root and util-linux.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.server.devprocess import clean_environment
from tests.servers import console_script, free_port, poll, stop_process, wait_for_http

TMPFS_SIZE = "20m"
ADMIN_PASSWORD = "disk-full-admin-password"
START_DEADLINE_S = 60.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class SmallDiskServer:
    """``pulp-registry dev`` whose data directory is a small tmpfs only its own mount namespace sees."""

    def __init__(self, process: subprocess.Popen, mount_dir: Path, log_path: Path, api_port: int,
                 registry_port: int) -> None:
        self.process = process
        self.mount_dir = mount_dir
        self.log_path = log_path
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.registry_url = f"http://127.0.0.1:{registry_port}"
        self.auth = ("admin", ADMIN_PASSWORD)

    @property
    def content_dir(self) -> Path:
        return self.mount_dir / "data" / "content"

    def inside(self, *argv: str) -> str:
        """Run ``argv`` in the server's mount namespace (where the tmpfs is) and return its output."""
        result = subprocess.run(["nsenter", "--target", str(self.process.pid), "--mount", "--", *argv],
                                capture_output=True, text=True, timeout=60, check=True)
        return result.stdout

    def free_bytes(self) -> int:
        return int(self.inside("df", "-B1", "--output=avail", str(self.mount_dir)).split()[-1])

    def files(self, directory: Path) -> list[str]:
        return sorted(self.inside("find", str(directory), "-type", "f").split())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"pulp-registry dev exited with {self.process.returncode}:\n{self.log()}")


def _skip_unless_namespaces_work() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test mounts a small tmpfs in a private mount namespace")
    for tool in ("unshare", "nsenter", "fallocate", "df"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (util-linux / coreutils)")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a private mount namespace here: {probe.stderr.strip()}")


@contextlib.contextmanager
def small_disk_server(tmp_path: Path) -> Iterator[SmallDiskServer]:
    _skip_unless_namespaces_work()
    mount_dir = tmp_path / "small-disk"
    mount_dir.mkdir()
    log_path = tmp_path / "pulp-registry-dev.log"
    api_port, registry_port = free_port(), free_port()
    while registry_port == api_port:
        registry_port = free_port()
    script = ('mount -t tmpfs -o size="$1" tmpfs "$2" && exec "$3" dev --data-dir "$2/data" '
              '--api-port "$4" --registry-port "$5" --admin-password "$6"')
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", TMPFS_SIZE,
            str(mount_dir), console_script("pulp-registry"), str(api_port), str(registry_port), ADMIN_PASSWORD]
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=clean_environment(), cwd=tmp_path)
    server = SmallDiskServer(process, mount_dir, log_path, api_port, registry_port)
    try:
        wait_for_http(f"{server.api_url}/pulp/api/v2/status/", START_DEADLINE_S, auth=server.auth,
                      alive=server.check_alive)
        wait_for_http(f"{server.registry_url}/", START_DEADLINE_S, alive=server.check_alive)
        yield server
    except BaseException:
        print(f"----- log of pulp-registry dev -----\n{server.log()}\n----- end of log -----")
        raise
    finally:
        stop_process(process)


def push_blob(server: SmallDiskServer, name: str, data: bytes) -> requests.Response:
    """A monolithic push: POST then PUT ``?digest=`` with the whole blob."""
    start = requests.post(f"{server.api_url}/v2/{name}/blobs/uploads/", auth=server.auth, timeout=30)
    assert start.status_code == 202, start.text
    return requests.put(f"{server.api_url}{start.headers['Location']}", params={"digest": sha256(data)},
                        data=data, auth=server.auth, timeout=60,
                        headers={"Content-Type": "application/octet-stream"})


def push_image(server: SmallDiskServer, name: str, tag: str) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(64 * 1024)
    for blob in (config, layer):
        assert push_blob(server, name, blob).status_code == 201
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer),
                    "size": len(layer)}],
    }).encode()
    response = requests.put(f"{server.api_url}/v2/{name}/manifests/{tag}", data=manifest, auth=server.auth,
                            headers={"Content-Type": OCI_MANIFEST}, timeout=30)
    assert response.status_code == 201, response.text
    return manifest


def crane_manifest(server: SmallDiskServer, name: str, tag: str) -> requests.Response:
    token = requests.get(f"{server.api_url}/token", auth=server.auth, timeout=30,
                         params={"service": "pulp-registry", "scope": f"repository:{name}:pull"})
    token.raise_for_status()
    return requests.get(f"{server.registry_url}/v2/{name}/manifests/{tag}", timeout=30,
                        headers={"Authorization": f"Bearer {token.json()['token']}", "Accept": OCI_MANIFEST})


def assert_storage_full_answer(response: requests.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    error = response.json()["errors"][0]
    assert error["message"].startswith("storage is full"), error


def test_a_push_bigger_than_the_free_space_answers_507_keeps_nothing_and_works_once_space_is_freed(tmp_path):
    with small_disk_server(tmp_path) as server:
        published = push_image(server, "full/app", "v1")
        poll(lambda: crane_manifest(server, "full/app", "v1").status_code == 200, 60, "Crane serves full/app:v1")

        # Leave about 3 MiB free, then push 5 MiB.
        server.inside("fallocate", "-l", str(server.free_bytes() - 3 * MiB), str(server.mount_dir / "filler"))
        blobs_before = server.files(server.content_dir / "blobs")
        free_before = server.free_bytes()
        big = os.urandom(5 * MiB)

        monolithic = requests.post(f"{server.api_url}/v2/full/other/blobs/uploads/", params={"digest": sha256(big)},
                                   data=big, auth=server.auth, timeout=60,
                                   headers={"Content-Type": "application/octet-stream"})
        assert_storage_full_answer(monolithic)
        assert_storage_full_answer(push_blob(server, "full/other", big))
        start = requests.post(f"{server.api_url}/v2/full/other/blobs/uploads/", auth=server.auth, timeout=30)
        chunk = requests.patch(f"{server.api_url}{start.headers['Location']}", data=big, auth=server.auth,
                               headers={"Content-Type": "application/octet-stream"}, timeout=60)
        assert_storage_full_answer(chunk)
        assert requests.get(f"{server.api_url}{start.headers['Location']}", auth=server.auth,
                            timeout=30).status_code == 404  # the session was dropped with its data

        # Nothing partial: no temporary file, no session file, no new blob, and the space is back.
        assert server.files(server.content_dir / "tmp") == []
        assert server.files(server.content_dir / "uploads") == []
        assert server.files(server.content_dir / "blobs") == blobs_before
        assert server.free_bytes() >= free_before - 64 * 1024
        assert "is full" in server.log()
        # What was published before is still served.
        served = crane_manifest(server, "full/app", "v1")
        assert served.status_code == 200 and served.content == published

        # Free space: the same push works.
        server.inside("rm", str(server.mount_dir / "filler"))
        done = push_blob(server, "full/other", big)
        assert done.status_code == 201, done.text
        pulled = requests.get(f"{server.api_url}/v2/full/other/blobs/{sha256(big)}", auth=server.auth, timeout=60)
        assert pulled.status_code == 200 and sha256(pulled.content) == sha256(big)
        assert crane_manifest(server, "full/app", "v1").content == published
