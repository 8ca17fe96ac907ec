"""Real clients against a running ``pulp-registry dev``: skopeo, registry-admin, plain HTTP.

Pushes go to the admin side (``docker://127.0.0.1:<api port>/NAME:TAG`` with the
admin's credentials), pulls come from Crane (``docker://127.0.0.1:<registry port>``),
both over plain HTTP, hence ``--dest-tls-verify=false`` / ``--src-tls-verify=false``.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import requests

from tests.images import skopeo
from tests.servers import DevServer, console_script, poll

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def run(*argv: str | Path, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a client; with ``check`` a failure raises showing its output."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(str(a) for a in argv)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def registry_admin(server: DevServer, *args: str | Path, check: bool = True,
                   **env: str) -> subprocess.CompletedProcess[str]:
    return run(console_script("registry-admin"), *args, env=server.env(**env), check=check)


def skopeo_push(server: DevServer, source: str, name: str, tag: str, *extra: str) -> None:
    """``skopeo copy SOURCE docker://<admin side>/NAME:TAG`` as the admin user, then wait for publish."""
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", server.creds, *extra,
           source, f"docker://{server.admin_host}/{name}:{tag}")
    server.wait_for_tasks()


def crane_manifest(server: DevServer, name: str, reference: str) -> requests.Response:
    return requests.get(f"{server.registry_url}/v2/{name}/manifests/{reference}",
                        headers={"Accept": MANIFEST_ACCEPT}, timeout=30)


def wait_until_pullable(server: DevServer, name: str, reference: str, deadline_s: float = 30) -> requests.Response:
    """Poll Crane until it serves ``name:reference`` (it picks up new published versions by itself)."""
    def served() -> requests.Response | None:
        server.check_alive()
        response = crane_manifest(server, name, reference)
        return response if response.status_code == 200 else None

    return poll(served, deadline_s, f"Crane serving {name}:{reference}", interval_s=0.2)


def crane_pull_dir(server: DevServer, name: str, reference: str, dest: Path) -> Path:
    """``skopeo copy docker://<crane>/NAME:REF dir:DEST`` (anonymous, plain HTTP)."""
    separator = "@" if reference.startswith("sha256:") else ":"
    skopeo("copy", "--src-tls-verify=false", f"docker://{server.registry_host}/{name}{separator}{reference}",
           f"dir:{dest}")
    return dest


def skopeo_inspect_raw(host: str, name: str, reference: str, creds: str | None = None) -> bytes:
    separator = "@" if reference.startswith("sha256:") else ":"
    args = ["inspect", "--raw", "--tls-verify=false"]
    if creds:
        args += ["--creds", creds]
    return skopeo(*args, f"docker://{host}/{name}{separator}{reference}").stdout


def repository_names(server: DevServer) -> str:
    """The admin API's repository listing as text, to look names up in."""
    response = server.api("GET", "/pulp/api/v2/repositories/")
    response.raise_for_status()
    return json.dumps(response.json())
