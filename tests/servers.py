"""Start real servers for tests: free ports, polling waits, ``pulp-registry dev`` as a subprocess.

Everything binds 127.0.0.1 on a free port and is stopped by the test that
started it. Waits poll with a deadline; nothing sleeps for a fixed time and
hopes. When a server fails, its log is printed so the failure says why.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import requests

ACTIVE_TASK_STATES = "waiting,running"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def console_script(name: str) -> str:
    """Path of an installed console script, preferring the running interpreter's environment."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; run `pip install -e '.[test]'` (scripts/test.sh does)")
    return found


def poll(check: Callable[[], Any], deadline_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Call ``check`` until it returns something truthy; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + deadline_s
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - reported when the deadline passes
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise TimeoutError(f"{what}: not reached within {deadline_s}s{detail}")
        time.sleep(interval_s)


#: Seconds a redis-server started by the tests may take to answer PING.
REDIS_START_DEADLINE = 15.0


@contextlib.contextmanager
def redis_server(port: int, workdir: Path) -> Iterator[str]:
    """redis-server on 127.0.0.1:``port`` (no persistence) until the block ends; yields its URL.

    Skips the test when redis-server is not installed (Debian package redis-server).
    """
    import pytest
    import redis

    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (Debian package redis-server); these tests need a real broker")
    log_path = workdir / f"redis-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", str(workdir)],
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        def answers() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{log_path.read_text()}")
            try:
                with redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1) as client:
                    return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False
        poll(answers, REDIS_START_DEADLINE, f"redis-server answering PING on port {port}", interval_s=0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process, grace_s=10)


def wait_for_http(url: str, deadline_s: float = 30.0, auth: tuple[str, str] | None = None,
                  statuses: Iterable[int] = (200,),
                  alive: Callable[[], None] | None = None) -> requests.Response:
    """Poll ``url`` until it answers with one of ``statuses``; ``alive`` may raise to stop early."""
    wanted = set(statuses)

    def check() -> requests.Response | None:
        if alive is not None:
            alive()
        response = requests.get(url, auth=auth, timeout=5)
        return response if response.status_code in wanted else None

    try:
        return poll(check, deadline_s, f"GET {url} answering {sorted(wanted)}")
    except TimeoutError:
        if alive is not None:
            alive()
        raise


@dataclass
class DevServer:
    """A running ``pulp-registry dev``: admin API + push on ``api_url``, Crane on ``registry_url``."""

    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    api_port: int
    registry_port: int
    admin_username: str
    admin_password: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def admin_host(self) -> str:
        """``host:port`` of the admin side's registry protocol (push)."""
        return f"127.0.0.1:{self.api_port}"

    @property
    def registry_host(self) -> str:
        """``host:port`` of Crane (pull)."""
        return f"127.0.0.1:{self.registry_port}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.registry_host}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin_username, self.admin_password)

    @property
    def creds(self) -> str:
        """``user:password`` as skopeo's ``--creds`` wants it."""
        return f"{self.admin_username}:{self.admin_password}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"pulp-registry dev exited with {self.process.returncode}:\n{self.log_text()}")

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated admin API call; ``path`` starts with ``/pulp/api/v2/``."""
        kwargs.setdefault("auth", self.auth)
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.api_url + path, **kwargs)

    def tasks(self, states: str) -> list[dict[str, Any]]:
        response = self.api("GET", "/pulp/api/v2/tasks/", params={"state": states})
        response.raise_for_status()
        body = response.json()
        if isinstance(body, dict):  # tolerate a paged form
            body = body.get("results", body.get("tasks", []))
        return list(body)

    def wait_for_tasks(self, deadline_s: float = 120.0) -> None:
        """Poll until no task is waiting or running (the publish after a push has finished)."""
        def idle() -> bool:
            self.check_alive()
            return not self.tasks(ACTIVE_TASK_STATES)

        poll(idle, deadline_s, "all tasks finished", interval_s=0.2)

    def failed_tasks(self) -> list[dict[str, Any]]:
        return self.tasks("error")

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for ``registry-admin`` pointed at this server, with a private HOME."""
        env = dict(os.environ)
        home = self.data_dir.parent / "home"
        home.mkdir(exist_ok=True)
        env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "REGISTRY_ADMIN_URL": self.api_url, "REGISTRY_ADMIN_USERNAME": self.admin_username,
                    "REGISTRY_ADMIN_PASSWORD": self.admin_password})
        env.update(extra)
        return env


def _clean_environment() -> dict[str, str]:
    """The test runner's environment without settings that would redirect the server."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("PULP_REGISTRY_", "CRANE_"))}


def stop_process(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace_s)


@contextlib.contextmanager
def run_dev_server(tmp_path: Path, admin_password: str = "e2e-admin-password",
                   extra_args: Iterable[str] = (), deadline_s: float = 60.0) -> Iterator[DevServer]:
    """Run ``pulp-registry dev`` on free ports with its data under ``tmp_path``; stop it afterwards."""
    tmp_path = Path(tmp_path)
    data_dir = tmp_path / "data"
    log_path = tmp_path / "pulp-registry-dev.log"
    api_port, registry_port = free_port(), free_port()
    while registry_port == api_port:
        registry_port = free_port()
    argv = [console_script("pulp-registry"), "dev", "--data-dir", str(data_dir),
            "--api-port", str(api_port), "--registry-port", str(registry_port),
            "--admin-password", admin_password, *extra_args]
    env = _clean_environment()
    env["PYTHONUNBUFFERED"] = "1"
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=env, cwd=tmp_path)
    server = DevServer(process, data_dir, log_path, api_port, registry_port, "admin", admin_password)
    try:
        wait_for_http(f"{server.api_url}/pulp/api/v2/status/", deadline_s, auth=server.auth,
                      alive=server.check_alive)
        # Crane's /v2/ answers 401 with a Bearer challenge in token mode, as distribution does: it is up.
        wait_for_http(f"{server.registry_url}/", deadline_s, alive=server.check_alive)
        yield server
    except BaseException:
        stop_process(process)
        sys.stderr.write(f"\n----- log of {' '.join(argv)} -----\n{server.log_text()}\n----- end of log -----\n")
        raise
    finally:
        stop_process(process)


# --- pushing over HTTP to a running server, for tests that do not need a registry client ------

def sha256_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(server: DevServer, name: str, data: bytes, chunk_size: int | None = None) -> str:
    """Push ``data`` as a blob of ``name`` to the admin side: one POST, or a session in PATCH chunks."""
    digest = sha256_digest(data)
    uploads = f"{server.api_url}/v2/{name}/blobs/uploads/"
    octet = {"Content-Type": "application/octet-stream"}
    if chunk_size is None:
        response = requests.post(uploads, params={"digest": digest}, data=data, headers=octet,
                                 auth=server.auth, timeout=120)
        response.raise_for_status()
        return digest
    response = requests.post(uploads, auth=server.auth, timeout=30)
    response.raise_for_status()
    location = response.headers["Location"]
    if location.startswith("/"):
        location = server.api_url + location
    for start in range(0, len(data), chunk_size):
        chunk = data[start:start + chunk_size]
        response = requests.patch(location, data=chunk, auth=server.auth, timeout=120, headers={
            **octet, "Content-Range": f"{start}-{start + len(chunk) - 1}"})
        response.raise_for_status()
        location = response.headers.get("Location", location)
        if location.startswith("/"):
            location = server.api_url + location
    response = requests.put(location, params={"digest": digest}, auth=server.auth, timeout=120)
    response.raise_for_status()
    return digest


def push_image_over_http(server: DevServer, name: str, tag: str, layers: list[bytes],
                         chunk_size: int | None = None) -> tuple[str, bytes]:
    """Push config, ``layers`` and an OCI image manifest tagged ``tag``; return the manifest digest and bytes."""
    import json

    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": push_blob(server, name, config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": push_blob(server, name, layer, chunk_size), "size": len(layer)}
                           for layer in layers]}
    raw = json.dumps(manifest).encode()
    response = requests.put(f"{server.api_url}/v2/{name}/manifests/{tag}", data=raw, auth=server.auth,
                            headers={"Content-Type": manifest["mediaType"]}, timeout=60)
    response.raise_for_status()
    return sha256_digest(raw), raw
