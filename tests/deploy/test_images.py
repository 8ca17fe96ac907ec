"""The container images as files: one Dockerfile with a target per service, .dockerignore, extras, gunicorn.

No container engine runs where the tests run, so the Dockerfile is read the way
an engine would (stages, what each target inherits); tests/deploy/test_crane_extra.py
installs the Crane extra alone and serves a pull from it.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from setuptools.config.setupcfg import read_configuration

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "dockerfiles" / "Dockerfile"
ADMIN_ONLY_MODULES = ("pymongo", "celery", "kombu", "redis", "ldap3")


@dataclass
class Stage:
    name: str
    parent: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def dockerfile_stages(text: str) -> dict[str, Stage]:
    """Stages by name, each with its instructions (continuation lines joined, comments dropped)."""
    logical, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            current = stages[name] = Stage(name, words[0])
        else:
            assert current is not None, f"instruction before FROM: {line}"
            current.instructions.append((keyword.upper(), rest.strip()))
    return stages


def chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM, base first."""
    found = []
    name = target
    while name in stages:
        found.append(stages[name])
        name = stages[name].parent
    return list(reversed(found))


def effective(stages: dict[str, Stage], target: str, keyword: str) -> list[str]:
    return [rest for stage in chain(stages, target) for key, rest in stage.instructions if key == keyword]


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


def test_one_dockerfile_replaces_the_three(stages):
    assert sorted(path.name for path in (REPO / "dockerfiles").glob("Dockerfile*")) == ["Dockerfile"]
    assert {"api", "worker", "crane"} <= set(stages)


def test_every_target_is_built_on_one_python_base(stages):
    bases = {chain(stages, target)[0].parent for target in ("api", "worker", "crane")}
    assert bases == {"python:3.11-slim"}
    assert {chain(stages, target)[0].name for target in ("api", "worker", "crane")} == {"base"}


@pytest.mark.parametrize("target", ["api", "worker", "crane"])
def test_targets_run_as_the_unprivileged_user_with_uid_1000(stages, target):
    users = effective(stages, target, "USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    runs = " ".join(effective(stages, target, "RUN"))
    assert re.search(rf"useradd [^&]*--uid 1000 [^&]*{re.escape(users[-1])}\b", runs)


@pytest.mark.parametrize("target", ["api", "worker", "crane"])
def test_data_directory_is_a_volume(stages, target):
    assert "/var/lib/pulp-registry" in effective(stages, target, "VOLUME")


def test_ports_are_exposed(stages):
    assert effective(stages, "api", "EXPOSE") == ["8080"]
    assert effective(stages, "crane", "EXPOSE") == ["5000"]
    assert effective(stages, "worker", "EXPOSE") == []


@pytest.mark.parametrize("target, url", [("api", "http://127.0.0.1:8080/readyz"),
                                         ("crane", "http://127.0.0.1:5000/readyz")])
def test_healthcheck_asks_the_readiness_url_without_curl(stages, target, url):
    checks = effective(stages, target, "HEALTHCHECK")
    assert len(checks) == 1 and url in checks[0]
    assert "python" in checks[0] and "urllib" in checks[0] and "curl" not in checks[0]


def test_worker_has_no_healthcheck_and_says_why(stages):
    assert effective(stages, "worker", "HEALTHCHECK") == ["NONE"]
    assert "heartbeat" in DOCKERFILE.read_text()


@pytest.mark.parametrize("target, command", [("api", ["pulp-registry", "api"]),
                                             ("worker", ["pulp-registry", "worker"]), ("crane", ["crane"])])
def test_each_target_runs_its_service(stages, target, command):
    import json

    assert json.loads(effective(stages, target, "CMD")[-1]) == command


def pip_installs(stages: dict[str, Stage], target: str) -> list[str]:
    installs = []
    for run in effective(stages, target, "RUN"):
        for part in run.split("&&"):
            words = shlex.split(part)
            if words[:2] == ["pip", "install"]:
                installs += [word for word in words[2:] if not word.startswith("-")]
    return installs


def test_crane_target_installs_only_the_crane_extra(stages):
    assert pip_installs(stages, "crane") == [".[crane]"]


@pytest.mark.parametrize("target", ["api", "worker"])
def test_admin_targets_install_the_admin_extra(stages, target):
    assert pip_installs(stages, target) == [".[admin]"]


def test_images_copy_the_packages_and_not_the_tests(stages):
    copied = " ".join(effective(stages, "crane", "COPY"))
    for package in ("pulp_registry", "crane", "workers", "admin_client", "setup.cfg"):
        assert package in copied
    assert "tests" not in copied and not re.search(r"COPY \. ", copied)


def test_dockerignore_keeps_the_build_context_small():
    entries = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for entry in (".venv", "data", ".git", "**/__pycache__", "*.egg-info", ".pytest_cache", "tests", "benchmarks",
                  "dockerfiles/secrets"):
        assert entry in entries, entry
    # what the Dockerfile copies must not be ignored
    for needed in ("pulp_registry", "crane", "workers", "admin_client", "setup.cfg", "pyproject.toml", "README.md"):
        assert needed not in entries


# --- the dependency split (setup.cfg) ---------------------------------------------------------------

@pytest.fixture(scope="module")
def options() -> dict:
    return read_configuration(str(REPO / "setup.cfg"))["options"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(requirement).name.lower() for requirement in requirements}


def test_install_requires_is_what_crane_needs_and_nothing_of_the_admin_side(options):
    required = names(options["install_requires"])
    assert {"flask", "pyyaml", "gunicorn", "click", "pyjwt", "requests", "prometheus-client", "orjson"} <= required
    assert not required & {*ADMIN_ONLY_MODULES, "mongomock", "bcrypt"}


def test_extras_admin_all_crane_test(options):
    extras = options["extras_require"]
    assert extras["crane"] == [] or not names(extras["crane"]) & set(ADMIN_ONLY_MODULES)
    assert {*ADMIN_ONLY_MODULES, "mongomock", "bcrypt"} <= names(extras["admin"])
    assert {str(Requirement(r).extras and sorted(Requirement(r).extras)) for r in extras["all"]} == {
        "['admin', 'crane', 's3']"}
    assert names(extras["s3"]) == {"boto3"}
    assert any(Requirement(r).name == "pulp-registry" and "all" in Requirement(r).extras for r in extras["test"])
    assert {"pytest", "pytest-timeout", "pytest-xdist"} <= names(extras["test"])


def test_gunicorn_has_an_upper_bound_the_installed_version_meets(options):
    import gunicorn

    (requirement,) = [Requirement(r) for r in options["install_requires"] if Requirement(r).name == "gunicorn"]
    assert any(spec.operator == "<" for spec in requirement.specifier)
    assert requirement.specifier.contains(gunicorn.__version__)


def test_scripts_install_the_right_extras():
    assert "ensure_venv '.[all]'" in (REPO / "scripts" / "dev.sh").read_text()
    assert "ensure_venv '.[test]'" in (REPO / "scripts" / "test.sh").read_text()


# --- gunicorn's control socket -------------------------------------------------------------------

def test_both_gunicorn_configs_turn_the_control_socket_off(tmp_path):
    from crane.cli import crane_server
    from crane.config import load_crane_settings
    from pulp_registry.config import Settings
    from pulp_registry.wsgi import admin_api_server

    crane = crane_server(load_crane_settings({}, {"data_dir": str(tmp_path)}))
    admin = admin_api_server(Settings(data_dir=str(tmp_path), mongo_url="mongodb://127.0.0.1:1/"))
    for server in (crane, admin):
        if "control_socket_disable" in server.cfg.settings:   # gunicorn >= 25.1
            assert server.cfg.control_socket_disable is True


def test_a_config_key_gunicorn_does_not_know_is_ignored(tmp_path):
    from pulp_registry.gunicorn_server import GunicornServer

    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("control_socket_disable = True\nsetting_of_a_future_gunicorn = 1\nworkers = 3\n")
    server = GunicornServer("test", lambda: None, [conf], {})
    assert server.cfg.workers == 3


@pytest.mark.skipif(shutil.which("gunicorn") is None and not (REPO / ".venv/bin/gunicorn").exists(),
                    reason="gunicorn's command is not installed")
@pytest.mark.parametrize("conf", ["pulp_registry/gunicorn.conf.py", "crane/gunicorn.conf.py"])
def test_gunicorn_command_with_our_config_has_no_control_socket(conf):
    gunicorn = str(REPO / ".venv/bin/gunicorn") if (REPO / ".venv/bin/gunicorn").exists() else "gunicorn"
    result = subprocess.run([gunicorn, "-c", str(REPO / conf), "--print-config", "crane.app:create_app"],
                            capture_output=True, cwd=REPO, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if "control_socket_disable" in result.stdout:
        assert re.search(r"^control_socket_disable\s*=\s*True$", result.stdout, re.M)


# --- a real build, only where an engine and the base image are there (no network for pulls here) ------

def engine_with_base_image() -> str | None:
    for engine in ("podman", "docker"):
        if shutil.which(engine) is None:
            continue
        try:
            probe = subprocess.run([engine, "image", "inspect", "python:3.11-slim"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return engine
    return None


@pytest.mark.slow
def test_crane_image_builds_and_holds_none_of_the_admin_stack():
    engine = engine_with_base_image()
    if engine is None:
        pytest.skip("no podman/docker with the python:3.11-slim image here (building needs one)")
    tag = "localhost/pulp-registry-crane:test"
    build = subprocess.run([engine, "build", "-f", str(DOCKERFILE), "--target", "crane", "-t", tag, str(REPO)],
                           capture_output=True, text=True, timeout=1800)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    code = ("import importlib.util, os; "
            f"print(os.getuid(), [m for m in {list(ADMIN_ONLY_MODULES)!r} if importlib.util.find_spec(m)])")
    run = subprocess.run([engine, "run", "--rm", tag, "python", "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1000", "[]"]


def test_every_crane_module_imports_without_the_admin_extra():
    """The quick form of tests/deploy/test_crane_extra.py: the admin extra's modules made unimportable."""
    import pkgutil

    import crane

    modules = ["crane"] + [info.name for info in pkgutil.walk_packages(crane.__path__, "crane.")]
    assert "crane.views.blobs" in modules
    blocked = [*ADMIN_ONLY_MODULES, "mongomock", "bcrypt", "workers"]
    code = ("import importlib, sys\n"
            f"for name in {blocked!r}: sys.modules[name] = None\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted(name for name in sys.modules if name.startswith('pulp_registry')))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "pulp_registry.db" not in result.stdout and "pulp_registry.cli" not in result.stdout
