"""``pulp-registry init``: one idempotent step that prepares a new installation (compose's ``init`` service)."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import mongomock
import pytest
from click.testing import CliRunner, Result

from pulp_registry.cli import ServerContext, cli
from pulp_registry.config import Settings
from pulp_registry.services import Services, build_services
from pulp_registry.users import authenticate
from tests.mongo_server import MongoWireServer

ADMIN_SECRET = "init-admin-secret"
PULP_REGISTRY = Path(sys.executable).with_name("pulp-registry")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    # mongodb:// (init refuses mongomock://); the services are built on the test's own mongomock client.
    return {"PULP_REGISTRY_DATA_DIR": str(tmp_path / "data"), "PULP_REGISTRY_MONGO_URL": "mongodb://mongodb:27017/",
            "PULP_REGISTRY_BROKER_URL": "amqp://guest:guest@rabbitmq:5672//", "PULP_REGISTRY_BCRYPT_ROUNDS": "4",
            "PULP_REGISTRY_CRANE_PUBLIC_URL": "https://registry.example.test"}


class SharedDatabase:
    """A ``build_services`` for ``ServerContext`` whose database outlives one command, like a MongoDB server."""

    def __init__(self) -> None:
        self.client = mongomock.MongoClient()
        self.built: list[Services] = []

    def __call__(self, settings: Settings) -> Services:
        self.built.append(build_services(settings, self.client))
        return self.built[-1]


def run_init(environ: dict[str, str], database: SharedDatabase, *args: str) -> Result:
    return CliRunner().invoke(cli, ["init", *args], obj=ServerContext(environ=environ, build_services=database))


def test_first_run_makes_indexes_roles_admin_keys_and_certificates(environ, tmp_path):
    database = SharedDatabase()
    result = run_init({**environ, "PULP_REGISTRY_ADMIN_PASSWORD": ADMIN_SECRET}, database)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["database", "administrator", "data directories",
                                                          "token keys", "certificates", "init"]
    services = database.built[0]
    assert len(services.db.tags.index_information()) > 1  # more than _id: the indexes were made
    assert services.db.roles.find_one({"_id": "super-users"})
    assert authenticate(services, "admin", ADMIN_SECRET) is not None
    data = tmp_path / "data"
    assert (data / "keys" / "token-signing.pem").exists() and (data / "keys" / "token-public.pem").exists()
    for name in ("ca.crt", "ca.key", "server.crt", "server.key"):
        assert (data / "certs" / name).exists(), name
    assert stat.S_IMODE((data / "certs" / "server.key").stat().st_mode) == 0o600
    assert (data / "published" / "FORMAT").exists()  # Crane is ready before the first publish
    assert "registry.example.test" in lines[4]


def test_second_run_changes_nothing_and_exits_0(environ, tmp_path):
    database = SharedDatabase()
    assert run_init({**environ, "PULP_REGISTRY_ADMIN_PASSWORD": ADMIN_SECRET}, database).exit_code == 0
    files = {path: path.read_bytes() for path in (tmp_path / "data").rglob("*") if path.is_file()}
    users = list(database.client["pulp_registry"].users.find())

    again = run_init(environ, database)  # no password needed: a user exists
    assert again.exit_code == 0, again.output
    assert "none created" in again.output and "token keys: kept" in again.output
    assert "certificates: kept" in again.output
    assert {path: path.read_bytes() for path in (tmp_path / "data").rglob("*") if path.is_file()} == files
    assert list(database.client["pulp_registry"].users.find()) == users


def test_admin_password_from_a_file_and_another_login(environ, tmp_path):
    secret = tmp_path / "admin-password"
    secret.write_text(ADMIN_SECRET + "\n")
    database = SharedDatabase()
    result = run_init(environ, database, "--admin-password-file", str(secret), "--admin-login", "root",
                      "--no-certificates")
    assert result.exit_code == 0, result.output
    assert "created 'root'" in result.output
    assert authenticate(database.built[0], "root", ADMIN_SECRET) is not None
    assert not (tmp_path / "data" / "certs").exists()


def test_without_a_password_and_no_user_it_fails_in_one_line(environ):
    result = run_init(environ, SharedDatabase())
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith("pulp-registry: init: no user exists yet")
    assert "Traceback" not in result.output


def test_mongomock_is_refused_like_api_does(environ):
    database = SharedDatabase()
    result = run_init({**environ, "PULP_REGISTRY_MONGO_URL": "mongomock://"}, database)
    assert result.exit_code == 2
    assert "pulp-registry: configuration error: mongo_url: 'mongomock://' is an in-memory database" in result.output
    assert database.built == []


def test_certificate_names_come_from_the_options(environ, tmp_path):
    result = run_init({**environ, "PULP_REGISTRY_ADMIN_PASSWORD": ADMIN_SECRET}, SharedDatabase(),
                      "--cert-host", "pulls.example.test", "--cert-ip", "192.0.2.7")
    assert result.exit_code == 0, result.output
    assert "for pulls.example.test, 192.0.2.7" in result.output


def run_command(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PULP_REGISTRY_")}
    return subprocess.run([str(PULP_REGISTRY), *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120)


def test_init_as_a_process_against_a_mongodb_server_twice(environ, tmp_path):
    with MongoWireServer() as mongo:
        env = {**environ, "PULP_REGISTRY_MONGO_URL": mongo.url,
               "PULP_REGISTRY_MONGO_DATABASE": f"t{uuid.uuid4().hex}"}
        first = run_command(["init"], {**env, "PULP_REGISTRY_ADMIN_PASSWORD": ADMIN_SECRET})
        assert first.returncode == 0, first.stderr
        assert "administrator: created 'admin'" in first.stdout
        second = run_command(["init"], env)
    assert second.returncode == 0, second.stderr
    assert "administrator: 1 user(s) exist, none created" in second.stdout
    assert "token keys: kept" in second.stdout and "certificates: kept" in second.stdout
    assert ADMIN_SECRET not in first.stdout + first.stderr + second.stdout + second.stderr


def test_pulp_registry_without_the_admin_extra_says_what_to_install():
    # What a Crane-only install (pip install '.[crane]') sees: no pymongo, celery, ... (tests/deploy installs one).
    code = ("import sys; sys.modules['pymongo'] = None; sys.modules['celery'] = None; "
            "sys.argv = ['pulp-registry', '--help']; from pulp_registry.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "pulp-registry: the admin side needs its dependencies: pip install 'pulp-registry[admin]' "
        "(missing: pymongo, celery)"]
    assert result.stdout == ""
