"""A Crane-only host: `pip install '.[crane]'` into a fresh venv carries none of the admin stack and serves pulls.

What the crane image does (dockerfiles/Dockerfile, target crane), without a
container engine: the same files, the same pip command, then `crane` on a tree
published by the admin side's own code, pulled with skopeo.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.crane.content import Publisher
from tests.images import skopeo
from tests.servers import free_port, stop_process, wait_for_http

REPO = Path(__file__).resolve().parents[2]
#: What the Dockerfile copies into the image before `pip install`.
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "pulp_registry", "crane", "workers", "admin_client")
ADMIN_ONLY_MODULES = ("pymongo", "celery", "kombu", "redis", "ldap3", "bcrypt", "mongomock")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo (Debian package) is not installed")]


def clean_environment(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CRANE_", "PULP_REGISTRY_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, **extra}


@pytest.fixture(scope="module")
def crane_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding `pip install '<sources>[crane]'` and nothing else."""
    root = tmp_path_factory.mktemp("crane-only")
    source = root / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                             "--disable-pip-version-check", f"{source}[crane]"],
                            capture_output=True, text=True, timeout=900, cwd=root, env=clean_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


def venv_python(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=venv, env=clean_environment())


def test_the_crane_extra_installs_none_of_the_admin_stack(crane_venv):
    code = ("import importlib.util, json; "
            f"print(json.dumps([m for m in {list(ADMIN_ONLY_MODULES)!r} if importlib.util.find_spec(m)]))")
    result = venv_python(crane_venv, code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_crane_imports_from_the_venv_and_loads_its_app(crane_venv):
    result = venv_python(crane_venv, "import crane.app, crane.cli, crane.fastpath; print(crane.app.__file__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(crane_venv))


def test_pulp_registry_there_says_what_to_install_in_one_line(crane_venv):
    result = subprocess.run([str(crane_venv / "bin" / "pulp-registry"), "--help"], capture_output=True, text=True,
                            timeout=120, cwd=crane_venv, env=clean_environment())
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("pulp-registry: the admin side needs its dependencies: "
                               "pip install 'pulp-registry[admin]' (missing: pymongo")


def test_crane_from_the_crane_extra_serves_a_pull_with_equal_digests(crane_venv, services, tmp_path):
    publisher = Publisher(services)
    repo = publisher.repository("deploy/crane-only")
    layers = [os.urandom(64 * 1024), b"second layer of the crane-only pull"]
    image = publisher.image(repo, "1.0", layers=layers)
    publisher.publish(repo)

    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    log = tmp_path / "crane.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen([str(crane_venv / "bin" / "crane"), "--data-dir", str(publisher.published_dir),
                                    "--bind", f"127.0.0.1:{port}", "--workers", "1"],
                                   stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path,
                                   env=clean_environment(HOME=str(home), XDG_RUNTIME_DIR=""))

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"crane exited with {process.returncode}:\n{log.read_text()}")

    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", deadline_s=60, alive=alive)
        reference = f"docker://127.0.0.1:{port}/deploy/crane-only:1.0"
        inspected = json.loads(skopeo("inspect", "--tls-verify=false", reference).stdout)
        assert inspected["Digest"] == image.digest
        skopeo("copy", "--src-tls-verify=false", reference, f"dir:{tmp_path / 'pulled'}")
    finally:
        stop_process(process)
    manifest = (tmp_path / "pulled" / "manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == image.digest
    for digest, data in image.layers:
        assert (tmp_path / "pulled" / digest.split(":", 1)[1]).read_bytes() == data
    assert not (home / ".gunicorn").exists(), "gunicorn made a control socket in $HOME"
