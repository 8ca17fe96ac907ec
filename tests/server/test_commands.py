"""The other ``pulp-registry`` commands: configuration errors, create-user, check-config, api/worker refusals."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pulp_registry.cli import ServerContext, build_process_services, cli
from pulp_registry.config import Settings
from pulp_registry.services import Services
from pulp_registry.users import authenticate
from tests.server.devprocess import clean_environment, run_command


def in_process(environ: dict[str, str]) -> tuple[ServerContext, list[Services]]:
    """A context whose services (built by the real factory, on mongomock) the test can look into afterwards."""
    built: list[Services] = []

    def build(settings: Settings) -> Services:
        built.append(build_process_services(settings))
        return built[-1]

    return ServerContext(environ=environ, build_services=build), built


@pytest.fixture
def mongomock_environ(tmp_path: Path) -> dict[str, str]:
    return {"PULP_REGISTRY_DATA_DIR": str(tmp_path / "data"), "PULP_REGISTRY_MONGO_URL": "mongomock://",
            "PULP_REGISTRY_BROKER_URL": "memory://"}


def invoke(args: list[str], obj: ServerContext, input: str | None = None):
    return CliRunner().invoke(cli, args, obj=obj, input=input, catch_exceptions=False)


# --- configuration errors stop every command with exit status 2 and name the key ---

def test_dev_with_an_unknown_key_in_the_yaml_file_exits_2_naming_the_key(tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text("data_dir: /tmp/x\nmongo_ulr: mongomock://\n")
    result = run_command(["dev", "--data-dir", str(tmp_path / "data"), "--config", str(config)])
    assert result.returncode == 2
    assert result.stderr.startswith("pulp-registry: configuration error: mongo_ulr: unknown setting")
    assert "Traceback" not in result.stderr


def test_bad_number_in_the_environment_exits_2_naming_the_variable(tmp_path):
    env = clean_environment(PULP_REGISTRY_MAX_MANIFEST_SIZE="abc")
    result = run_command(["dev", "--data-dir", str(tmp_path / "data")], env=env)
    assert result.returncode == 2
    assert "pulp-registry: configuration error: PULP_REGISTRY_MAX_MANIFEST_SIZE" in result.stderr
    assert "'abc'" in result.stderr


@pytest.mark.parametrize("args", [["api"], ["worker"], ["create-user", "bob", "--password", "pw"],
                                  ["check-config"]], ids=lambda args: args[0])
def test_every_command_stops_on_a_config_error_with_exit_2(tmp_path, args):
    config = tmp_path / "registry.yaml"
    config.write_text("log_level: LOUD\n")
    context, built = in_process({"PULP_REGISTRY_CONFIG": str(config)})
    result = invoke(args, context)
    assert result.exit_code == 2
    assert "pulp-registry: configuration error: log_level: 'LOUD' is not a logging level" in result.output
    assert built == []


def test_missing_config_file_is_named(tmp_path):
    context, _ = in_process({})
    result = invoke(["check-config", "--config", str(tmp_path / "nope.yaml")], context)
    assert result.exit_code == 2
    assert f"config file {tmp_path / 'nope.yaml'}" in result.output


@pytest.mark.parametrize("args, message", [
    (["--admin-password", ""], "password must be a non-empty string"),
    (["--api-port", "5000", "--registry-port", "5000"], "must differ from --api-port"),
])
def test_dev_refuses_bad_options_before_starting_anything(tmp_path, mongomock_environ, args, message):
    context, built = in_process(mongomock_environ)
    result = invoke(["dev", "--data-dir", str(tmp_path / "data"), *args], context)
    assert result.exit_code == 2
    assert message in result.output
    assert built == [] and not (tmp_path / "data").exists()


# --- api and worker cannot share an in-memory database or broker ---

def test_api_with_mongomock_refuses_to_start_and_points_to_dev(tmp_path):
    env = clean_environment(PULP_REGISTRY_MONGO_URL="mongomock://", PULP_REGISTRY_DATA_DIR=str(tmp_path))
    result = run_command(["api", "--bind", "127.0.0.1:1"], env=env)
    assert result.returncode == 2
    assert "pulp-registry: configuration error: mongo_url: 'mongomock://' is an in-memory database" in result.stderr
    assert "pulp-registry dev" in result.stderr


def test_worker_with_mongomock_refuses_to_start_and_points_to_dev(mongomock_environ):
    context, built = in_process(mongomock_environ)
    result = invoke(["worker"], context)
    assert result.exit_code == 2
    assert "mongo_url: 'mongomock://' is an in-memory database" in result.output
    assert "pulp-registry dev" in result.output and built == []


def test_api_with_an_in_memory_broker_refuses_to_start(tmp_path):
    context, built = in_process({"PULP_REGISTRY_MONGO_URL": "mongodb://127.0.0.1:1/",
                                 "PULP_REGISTRY_BROKER_URL": "memory://"})
    result = invoke(["api"], context)
    assert result.exit_code == 2
    assert "broker_url: 'memory://' is an in-memory broker" in result.output and built == []


# --- create-user ---

def test_create_user_stores_a_bcrypt_user_that_can_authenticate(mongomock_environ):
    context, built = in_process(mongomock_environ)
    result = invoke(["create-user", "alice", "--password", "s3cret", "--name", "Alice Example"], context)
    assert result.exit_code == 0, result.output
    assert "created user 'alice' (roles: super-users)" in result.output
    user = authenticate(built[0], "alice", "s3cret")
    assert user is not None and user["name"] == "Alice Example" and user["roles"] == ["super-users"]
    assert user["password_hash"].startswith("$2") and "s3cret" not in user["password_hash"]
    assert authenticate(built[0], "alice", "wrong") is None


def test_create_user_asks_for_the_password_twice_when_not_given(mongomock_environ):
    context, built = in_process(mongomock_environ)
    result = invoke(["create-user", "bob"], context, input="typed-pw\ntyped-pw\n")
    assert result.exit_code == 0, result.output
    assert authenticate(built[0], "bob", "typed-pw") is not None
    assert "typed-pw" not in result.output


def test_create_user_duplicate_is_one_line_and_exit_1_and_keeps_the_first_password(mongomock_environ):
    context, built = in_process(mongomock_environ)
    services = build_process_services(Settings(data_dir=mongomock_environ["PULP_REGISTRY_DATA_DIR"],
                                               mongo_url="mongomock://", broker_url="memory://"))
    context.build_services = lambda settings: services
    assert invoke(["create-user", "carol", "--password", "first"], context).exit_code == 0
    result = invoke(["create-user", "carol", "--password", "second"], context)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == "pulp-registry: create-user: user 'carol' already exists"
    assert authenticate(services, "carol", "first") is not None
    assert authenticate(services, "carol", "second") is None


@pytest.mark.parametrize("args, message", [
    (["create-user", "has space", "--password", "pw"], "invalid login 'has space'"),
    (["create-user", "dave", "--password", ""], "password must be a non-empty string"),
    (["create-user", "dave", "--password", "x" * 73], "password is longer than 72 bytes"),
    (["create-user", "dave", "--password", "pw", "--role", "a b"], "invalid role name 'a b'"),
    (["create-user", "dave", "--password", "pw", "--role", "admins"], "unknown role 'admins'"),
])
def test_create_user_bad_input_is_one_line_exit_1_and_creates_nothing(mongomock_environ, args, message):
    context, built = in_process(mongomock_environ)
    result = invoke(args, context)
    assert result.exit_code == 1
    assert f"pulp-registry: create-user: {message}" in result.output
    assert all(services.db.users.count_documents({}) == 0 for services in built)


def test_create_user_on_mongomock_warns_that_the_user_is_gone_afterwards(mongomock_environ):
    context, _ = in_process(mongomock_environ)
    result = invoke(["create-user", "erin", "--password", "pw"], context)
    assert result.exit_code == 0
    assert "gone when this command ends" in result.output


# --- check-config ---

def test_check_config_prints_the_effective_settings_as_yaml_with_passwords_hidden(tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text("data_dir: /srv/registry\nmongo_url: mongodb://reg:hunter2@db.example:27017/\n")
    context, _ = in_process({"PULP_REGISTRY_CONFIG": str(config), "PULP_REGISTRY_API_WORKERS": "7"})
    result = invoke(["check-config"], context)
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    printed = yaml.safe_load(result.output)
    assert printed["data_dir"] == "/srv/registry" and printed["published_dir"] == "/srv/registry/published"
    assert printed["api_workers"] == 7
    assert printed["mongo_url"] == "mongodb://reg:***@db.example:27017/"


def test_check_config_hides_the_ldap_bind_password_and_prints_the_ldap_section(tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text("ldap:\n  url: ldaps://ldap.example:636\n  user_search_base: ou=people,dc=example\n"
                      "  bind_dn: cn=registry,dc=example\n")
    context, _ = in_process({"PULP_REGISTRY_CONFIG": str(config),
                             "PULP_REGISTRY_LDAP_BIND_PASSWORD": "ldap-bind-secret"})
    result = invoke(["check-config"], context)
    assert result.exit_code == 0, result.output
    assert "ldap-bind-secret" not in result.output
    printed = yaml.safe_load(result.output)
    assert printed["ldap"]["bind_password"] == "***" and printed["ldap"]["url"] == "ldaps://ldap.example:636"


# --- the admin API's gunicorn wiring (configuration only: serving it needs a MongoDB server) ---

def test_api_gunicorn_config_takes_bind_and_workers_from_settings_and_allows_long_uploads():
    from pulp_registry.wsgi import admin_api_server

    server = admin_api_server(Settings(api_bind="127.0.0.1:18080", api_workers=3))
    assert server.cfg.bind == ["127.0.0.1:18080"]
    assert server.cfg.workers == 3
    assert server.cfg.timeout >= 600
    assert server.cfg.preload_app is False, "services must be built in each worker after the fork"
    assert server.cfg.threads > 1


def test_wsgi_create_builds_the_admin_app_with_its_own_services(tmp_path):
    from pulp_registry.wsgi import create

    app = create(Settings(data_dir=str(tmp_path), mongo_url="mongomock://", broker_url="memory://"))
    response = app.test_client().get("/pulp/api/v2/status/")
    assert response.status_code == 401
