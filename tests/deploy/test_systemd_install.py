"""``pulp-registry install`` / ``uninstall``: systemd units with the real paths, accepted by systemd's own tools.

Everything is written below a scratch ``--root``; the units name paths of the target
system (``/etc/pulp-registry/...``), so files are looked up below the root here.
"""
from __future__ import annotations

import configparser
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from crane.config import load_crane_settings
from pulp_registry.cli import ServerContext, cli
from pulp_registry.config import load_admin_settings
from pulp_registry.registry_tokens import TokenKeys

BIN_DIR = Path(sys.executable).parent
UNITS = ("pulp-registry-api.service", "pulp-registry-worker@.service", "crane.service", "pulp-registry.target")
SERVICES = UNITS[:3]
REPOSITORY = Path(__file__).resolve().parents[2]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj=ServerContext(environ={}))


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: sections of keys, a key may repeat (each value kept)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def in_root(root: Path, target: Path) -> Path:
    """A path of the target system, as written below the test's --root."""
    return root / str(target).lstrip("/")


def service(root: Path, unit: str) -> dict[str, list[str]]:
    return parse_unit(root / "etc/systemd/system" / unit)["Service"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var-lib-pulp-registry"


@pytest.fixture
def root(tmp_path: Path, data_dir: Path) -> Path:
    root = tmp_path / "root"
    result = run("install", "--root", str(root), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    return root


def test_install_writes_the_units_the_user_entry_and_the_settings(root, data_dir):
    written = sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
    assert written == sorted([
        *(f"etc/systemd/system/{unit}" for unit in UNITS),
        "etc/systemd/system/pulp-registry-worker@1.service.d/metrics.conf",
        "etc/systemd/system/pulp-registry-worker@2.service.d/metrics.conf",
        "usr/lib/sysusers.d/pulp-registry.conf", "usr/lib/tmpfiles.d/pulp-registry.conf",
        "etc/pulp-registry/pulp-registry.env", "etc/pulp-registry/pulp-registry.yaml",
        "etc/pulp-registry/crane.yaml"])
    sysusers = (root / "usr/lib/sysusers.d/pulp-registry.conf").read_text()
    assert f'u pulp-registry - "pulp-registry container registry" {data_dir} -' in sysusers.splitlines()
    tmpfiles = (root / "usr/lib/tmpfiles.d/pulp-registry.conf").read_text()
    assert f"d {data_dir} 0750 pulp-registry pulp-registry -" in tmpfiles.splitlines()
    # Crane bind-mounts the published tree, so it exists before the first publish.
    assert f"d {data_dir}/published 0750 pulp-registry pulp-registry -" in tmpfiles.splitlines()
    assert not any("{{" in path.read_text() for path in root.rglob("*") if path.is_file())


def test_services_run_the_installed_executables_as_the_user_with_a_sandbox(root, data_dir):
    for unit in SERVICES:
        options = service(root, unit)
        program = Path(options["ExecStart"][0].split()[0])
        assert program.parent == BIN_DIR and program.is_file() and os.access(program, os.X_OK), unit
        assert options["User"] == ["pulp-registry"] and options["Group"] == ["pulp-registry"]
        assert options["EnvironmentFile"] == ["/etc/pulp-registry/pulp-registry.env"]
        assert options["Restart"] == ["on-failure"]
        # A venv below /home or /root (a developer's checkout) must stay readable to the service.
        protect_home = "read-only" if BIN_DIR.parts[1:2] in (("home",), ("root",)) else "yes"
        for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                           ("ProtectHome", protect_home), ("PrivateDevices", "yes")):
            assert options[key] == [value], (unit, key)
        unit_section = parse_unit(root / "etc/systemd/system" / unit)["Unit"]
        assert unit_section["PartOf"] == ["pulp-registry.target"]
        assert "network-online.target" in unit_section["After"][0].split()
        assert parse_unit(root / "etc/systemd/system" / unit)["Install"]["WantedBy"] == ["pulp-registry.target"]
    assert service(root, "pulp-registry-api.service")["ExecStart"] == [f"{BIN_DIR / 'pulp-registry'} api"]
    assert service(root, "pulp-registry-worker@.service")["ExecStart"] == [
        f"{BIN_DIR / 'pulp-registry'} worker --hostname %i@%H"]
    assert service(root, "crane.service")["ExecStart"] == [str(BIN_DIR / "crane")]
    for unit in ("pulp-registry-api.service", "pulp-registry-worker@.service"):
        assert service(root, unit)["ReadWritePaths"] == [str(data_dir)]


def test_the_first_two_workers_serve_their_metrics_on_ports_of_their_own(root):
    ports = []
    for instance in ("1", "2"):
        drop_in = parse_unit(root / f"etc/systemd/system/pulp-registry-worker@{instance}.service.d/metrics.conf")
        (variable,) = drop_in["Service"]["Environment"]
        name, _, bind = variable.partition("=")
        assert name == "PULP_REGISTRY_WORKER_METRICS_BIND" and bind.startswith("127.0.0.1:")
        ports.append(bind)
    assert ports == ["127.0.0.1:9808", "127.0.0.1:9809"]


def test_the_target_groups_the_api_and_crane_and_starts_at_boot(root):
    target = parse_unit(root / "etc/systemd/system/pulp-registry.target")
    assert set(target["Unit"]["Wants"][0].split()) == {"pulp-registry-api.service", "crane.service"}
    assert target["Install"]["WantedBy"] == ["multi-user.target"]
    assert parse_unit(root / "etc/systemd/system/pulp-registry-worker@.service")["Install"]["DefaultInstance"] == ["1"]


def test_crane_can_only_read_the_published_tree_and_the_public_key(root, data_dir):
    crane = service(root, "crane.service")
    assert "ReadWritePaths" not in crane
    # The data directory is an empty read-only tmpfs; only these are mounted (read-only) into it.
    assert crane["TemporaryFileSystem"] == [f"{data_dir}:ro"]
    assert crane["BindReadOnlyPaths"] == [str(data_dir / "published"), f"-{data_dir}/keys/token-public.pem",
                                          f"-{data_dir}/certs/ca.crt"]
    text = (root / "etc/systemd/system/crane.service").read_text()
    assert "token-signing" not in text and "ca.key" not in text and "/content" not in text


def test_the_environment_file_names_settings_that_load(root, data_dir):
    env_file = root / "etc/pulp-registry/pulp-registry.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600  # read by systemd as root; may hold secrets
    variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                     if line and not line.startswith("#"))
    assert variables == {"PULP_REGISTRY_CONFIG": "/etc/pulp-registry/pulp-registry.yaml",
                         "CRANE_CONFIG": "/etc/pulp-registry/crane.yaml"}
    environ = {key: str(in_root(root, Path(value))) for key, value in variables.items()}
    settings = load_admin_settings(environ)
    assert settings.data_dir == str(data_dir) and settings.log_format == "json"
    assert settings.published_dir == str(data_dir / "published")
    TokenKeys.load_or_create(settings)  # what the API does at its first start; Crane needs the public key
    crane = load_crane_settings(environ)
    assert crane.data_dir == settings.published_dir
    assert crane.token_auth and crane.token_public_key == settings.token_public_key
    assert (crane.token_issuer, crane.token_service) == (settings.token_issuer, settings.token_service)


def test_installing_again_changes_nothing_and_keeps_edited_settings(tmp_path, root, data_dir):
    settings_file = root / "etc/pulp-registry/pulp-registry.yaml"
    settings_file.write_text("data_dir: /srv/edited\n")
    before = {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    result = run("install", "--root", str(root), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert {path: path.read_bytes() for path in root.rglob("*") if path.is_file()} == before
    actions = {line.split()[1]: line.split()[0] for line in result.output.splitlines() if line.startswith("  ")
               and len(line.split()) == 2}
    assert actions[str(settings_file)] == "kept"
    assert actions[str(root / "etc/systemd/system/crane.service")] == "unchanged"
    assert "systemctl daemon-reload" in result.output
    assert "systemctl enable --now pulp-registry.target pulp-registry-worker@1" in result.output


def test_an_edited_unit_is_rewritten_only_with_force(root, data_dir):
    unit = root / "etc/systemd/system/pulp-registry-api.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=no"))
    result = run("install", "--root", str(root), "--data-dir", str(data_dir))
    assert result.exit_code != 0
    assert "Restart=no" in unit.read_text()
    assert str(unit) in result.output and "--force" in result.output
    result = run("install", "--root", str(root), "--data-dir", str(data_dir), "--force")
    assert result.exit_code == 0, result.output
    assert "Restart=on-failure" in unit.read_text()


def test_uninstall_removes_the_units_and_keeps_settings_and_data(root, data_dir):
    data_dir = in_root(root, data_dir)
    (data_dir / "content").mkdir(parents=True)
    (data_dir / "content" / "blob").write_bytes(b"precious")
    wants = root / "etc/systemd/system/pulp-registry.target.wants"
    wants.mkdir()
    (wants / "pulp-registry-worker@1.service").symlink_to("/etc/systemd/system/pulp-registry-worker@.service")
    result = run("uninstall", "--root", str(root))  # data and config directories read from the installed unit
    assert result.exit_code == 0, result.output
    assert (data_dir / "content" / "blob").read_bytes() == b"precious"
    left = sorted(str(path.relative_to(root)) for path in root.rglob("*")
                  if path.is_file() and data_dir not in path.parents)
    assert left == ["etc/pulp-registry/crane.yaml", "etc/pulp-registry/pulp-registry.yaml"]
    assert not wants.exists()
    assert not list((root / "etc/systemd/system").glob("*.service.d"))
    assert "kept" in result.output and str(data_dir) in result.output


def test_uninstall_remove_data_removes_the_data_and_settings(root, data_dir):
    data_dir = in_root(root, data_dir)
    (data_dir / "content").mkdir(parents=True)
    (data_dir / "content" / "blob").write_bytes(b"gone")
    result = run("uninstall", "--root", str(root), "--remove-data")
    assert result.exit_code == 0, result.output
    assert not data_dir.exists()
    assert not [path for path in root.rglob("*") if path.is_file()]


def test_uninstall_refuses_to_remove_a_system_directory(tmp_path):
    result = run("uninstall", "--root", str(tmp_path), "--data-dir", "/var/lib", "--remove-data")
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "pulp-registry: uninstall: --data-dir: refusing to remove /var/lib, a system directory"]


@pytest.mark.parametrize("args, message", [
    (("--data-dir", "var/lib/registry"), "--data-dir: 'var/lib/registry' must be an absolute path"),
    (("--data-dir", "/srv/my registry"), "--data-dir: '/srv/my registry' holds a space"),
    (("--user", "Root Admin"), "--user: 'Root Admin' is not a valid user name"),
    (("--config-dir", "etc"), "--config-dir: 'etc' must be an absolute path"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, message):
    result = run("install", "--root", str(tmp_path / "root"), *args)
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"pulp-registry: install: {message}")
    assert not (tmp_path / "root").exists()


def test_a_root_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = run("install", "--root", str(tmp_path / "file" / "root"))
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1 and "pulp-registry: install: " in result.output


def test_a_venv_or_data_dir_under_home_stays_readable(tmp_path):
    root = tmp_path / "root"
    assert run("install", "--root", str(root), "--data-dir", "/home/registry/data").exit_code == 0
    assert service(root, "pulp-registry-api.service")["ProtectHome"] == ["read-only"]


def test_the_templates_are_package_data():
    setup = configparser.ConfigParser()
    setup.read(REPOSITORY / "setup.cfg")
    assert "systemd/*" in [item.strip() for item in setup["options.package_data"]["pulp_registry"].split(",")]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_units(root):
    unit_dir = root / "etc/systemd/system"
    # An instance of the worker template is verified too; the user need not exist for verify.
    # Instances load their drop-ins (metrics.conf) too.
    units = [str(unit_dir / unit) for unit in UNITS] + [
        str(unit_dir / f"pulp-registry-worker@{instance}.service") for instance in ("1", "2", "3")]
    result = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).strip() == ""  # no warning either (an unknown key is only a warning)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_would_catch_a_wrong_path(root, tmp_path):
    unit = tmp_path / "broken.service"
    unit.write_text((root / "etc/systemd/system/crane.service").read_text().replace(
        str(BIN_DIR / "crane"), str(BIN_DIR / "no-such-crane")))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "no-such-crane" in result.stderr


@pytest.mark.skipif(not (shutil.which("systemd-sysusers") and shutil.which("systemd-tmpfiles")),
                    reason="systemd-sysusers or systemd-tmpfiles is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="systemd-tmpfiles can only give the data directory its owner as root")
def test_sysusers_and_tmpfiles_make_the_user_and_its_data_directory(tmp_path):
    root = tmp_path / "root"
    assert run("install", "--root", str(root)).exit_code == 0
    for command in (["systemd-sysusers", f"--root={root}", "pulp-registry.conf"],
                    ["systemd-tmpfiles", "--create", f"--root={root}", "pulp-registry.conf"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    entry = next(line.split(":") for line in (root / "etc/passwd").read_text().splitlines()
                 if line.startswith("pulp-registry:"))
    assert entry[5] == "/var/lib/pulp-registry"
    data = (root / "var/lib/pulp-registry").stat()
    assert (data.st_uid, data.st_gid) == (int(entry[2]), int(entry[3]))
    assert stat.S_IMODE(data.st_mode) == 0o750
    assert (root / "var/lib/pulp-registry/published").stat().st_uid == int(entry[2])


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_security_rates_every_service_well_sandboxed(root):
    for unit in ("pulp-registry-api.service", "pulp-registry-worker@1.service", "crane.service"):
        # Exposure on systemd's 0-10 scale, times ten: 3.0 and below is "OK" (a plain service is about 9.6).
        result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=30",
                                 str(root / "etc/systemd/system" / unit)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (unit, result.stdout[-400:], result.stderr)


def test_a_venv_the_service_user_cannot_read_is_named():
    from pulp_registry.commands.install import closed_to_others

    # Not below pytest's tmp_path, which is itself private (0700).
    with tempfile.TemporaryDirectory(prefix="install-test-") as name:
        top = Path(name)
        program = top / "private" / "bin" / "pulp-registry"
        program.parent.mkdir(parents=True)
        program.write_text("#!/bin/sh\n")
        for path in (top, top / "private", program.parent, program):
            path.chmod(0o755)
        assert closed_to_others(program) is None
        (top / "private").chmod(0o700)
        assert closed_to_others(program) == top / "private"


def test_crane_starts_from_the_unit_command_line_with_the_installed_settings(root, data_dir):
    """ExecStart and the environment file as systemd would use them (paths mapped below the test's root)."""
    from tests.servers import _clean_environment, free_port, poll, stop_process

    env_file = in_root(root, Path(service(root, "crane.service")["EnvironmentFile"][0]))
    variables = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
                     if line and not line.startswith("#"))
    environ = {key: str(in_root(root, Path(value))) for key, value in variables.items()}
    TokenKeys.load_or_create(load_admin_settings(environ))  # what init or the API's first start makes
    (data_dir / "published").mkdir(parents=True)  # what tmpfiles.d makes
    port = free_port()
    command = shlex.split(service(root, "crane.service")["ExecStart"][0])
    log = root.parent / "crane.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, env={**_clean_environment(), **environ, "CRANE_WORKERS": "1",
                                                 "CRANE_BIND": f"127.0.0.1:{port}"},
                                   stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        def alive() -> None:
            if process.poll() is not None:
                raise AssertionError(f"crane exited {process.returncode}: {log.read_text()[-2000:]}")

        def answer() -> tuple[requests.Response] | None:
            alive()
            response = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            return (response,)  # a tuple: a 503 Response is falsy, and poll waits for something truthy

        (ready,) = poll(answer, 60, "crane answering /readyz")
        assert ready.status_code == 503 and ready.json()["failing"] == ["published_tree"]  # nothing published yet
        challenge = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
        assert challenge.status_code == 401  # token mode, as installed: a load balancer counts it as healthy
        assert 'realm="http://127.0.0.1:8080/token"' in challenge.headers["WWW-Authenticate"]
    except TimeoutError as exc:
        raise AssertionError(f"crane did not answer ({exc}): {log.read_text()[-2000:]}") from None
    finally:
        stop_process(process)
