"""Configuration that says what is wrong: refused values name their key, unknown variables name the closest
key, directories that cannot be made stop start-up in one line, and check-config hides every secret."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from crane.config import load_crane_settings
from pulp_registry.cli import ServerContext, cli
from pulp_registry.config import ConfigError, Settings, load_admin_settings
from tests.server.devprocess import clean_environment, run_command
from tests.servers import console_script, free_port


@pytest.mark.parametrize("key, value, expected", [
    ("broker_url", "redsi://127.0.0.1:6379/0", "scheme redsi:// is not a broker's"),
    ("broker_url", "127.0.0.1:6379", "scheme (none) is not a broker's"),
    ("broker_url", "http://rabbit:15672/", "use redis://, rediss://, amqp:// or amqps://"),
    ("api_bind", "8080", "needs a port between 1 and 65535"),
    ("api_bind", "0.0.0.0:0", "needs a port between 1 and 65535"),
    ("api_bind", "0.0.0.0:65536", "needs a port between 1 and 65535"),
    ("api_bind", "localhost", "expected HOST:PORT"),
    ("api_bind", "::1:8080", "has no valid host"),
    ("api_bind", "http://0.0.0.0:8080", "has a scheme: drop it"),
    ("pull_host", "https://registry.example.com", "has a scheme: drop it (https://)"),
    ("pull_host", "registry.example.com:http", "has a port that is not 1-65535"),
    ("pull_host", "registry.example.com/team", "has no valid host"),
])
def test_a_refused_value_is_named_with_what_is_expected(key, value, expected):
    with pytest.raises(ConfigError) as refused:
        Settings(**{key: value})
    message = str(refused.value)
    assert message.startswith(f"{key}: ") and expected in message


@pytest.mark.parametrize("key, value", [
    ("broker_url", "redis://127.0.0.1:6379/0"), ("broker_url", "rediss://cache.example.com:6380/0"),
    ("broker_url", "amqp://guest@rabbit:5672//"), ("broker_url", "amqps://rabbit.example.com//"),
    ("broker_url", "memory://"), ("api_bind", "0.0.0.0:8080"), ("api_bind", "[::]:8080"),
    ("api_bind", "registry-admin.example.com:443"), ("pull_host", "registry.example.com"),
    ("pull_host", "registry.example.com:5000"), ("pull_host", "[::1]:5000"),
])
def test_good_values_are_accepted(key, value):
    assert getattr(Settings(**{key: value}), key) == value


def test_a_refused_broker_url_never_shows_its_password():
    with pytest.raises(ConfigError) as refused:
        Settings(broker_url="ampq://registry:hunter2-broker@rabbit:5672//")
    assert "hunter2-broker" not in str(refused.value) and "ampq://" in str(refused.value)


def test_check_config_refuses_a_wrong_value_from_the_environment_in_one_line():
    result = CliRunner().invoke(cli, ["check-config"],
                                obj=ServerContext(environ={"PULP_REGISTRY_PULL_HOST": "https://reg.example.com"}))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "pulp-registry: configuration error: pull_host: 'https://reg.example.com' has a scheme: drop it "
        "(https://); expected host[:port] as users type it in `docker pull host:port/name`"]


# --- unknown variables: a warning naming the closest key ---------------------------------------------

def test_an_unknown_variable_is_reported_with_the_closest_key():
    warnings: list[str] = []
    settings = load_admin_settings({"PULP_REGISTRY_BROKER_ULR": "amqp://rabbit//"}, on_warning=warnings.append)
    assert warnings == ["PULP_REGISTRY_BROKER_ULR is not a setting (did you mean PULP_REGISTRY_BROKER_URL?)"]
    assert settings.broker_url == Settings().broker_url   # reported, not guessed


def test_an_unknown_section_variable_is_reported_with_the_closest_key():
    warnings: list[str] = []
    load_admin_settings({"PULP_REGISTRY_LDAP_BIND_DNN": "cn=x"}, on_warning=warnings.append)
    assert warnings == ["PULP_REGISTRY_LDAP_BIND_DNN is not a setting (did you mean PULP_REGISTRY_LDAP_BIND_DN?)"]


def test_variables_read_elsewhere_and_section_variables_are_not_reported(tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text("data_dir: /srv/r\n")
    warnings: list[str] = []
    load_admin_settings({"PULP_REGISTRY_CONFIG": str(config), "PULP_REGISTRY_ADMIN_PASSWORD": "first-admin-pw",
                         "PULP_REGISTRY_LDAP_URL": "ldap://dir:389", "PULP_REGISTRY_LDAP_USER_SEARCH_BASE": "dc=x",
                         "PULP_REGISTRY_MONGO_URL": "mongomock://", "OTHER_TOOL_SETTING": "1"},
                        on_warning=warnings.append)
    assert warnings == []


def test_without_a_receiver_the_warning_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="pulp_registry.config"):
        load_admin_settings({"PULP_REGISTRY_LOG_LEVLE": "DEBUG"})
    assert "PULP_REGISTRY_LOG_LEVLE is not a setting (did you mean PULP_REGISTRY_LOG_LEVEL?)" in caplog.text


def test_the_command_line_prints_the_warning_on_stderr_and_goes_on():
    result = run_command(["check-config"], env=clean_environment(PULP_REGISTRY_BROKER_ULR="amqp://rabbit//"))
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "pulp-registry: warning: PULP_REGISTRY_BROKER_ULR is not a setting "
        "(did you mean PULP_REGISTRY_BROKER_URL?)"]


def test_an_unknown_crane_variable_is_reported_with_the_closest_key():
    warnings: list[str] = []
    load_crane_settings({"CRANE_DATA_DRI": "/srv/published", "CRANE_CONFIG": ""}, on_warning=warnings.append)
    assert warnings == ["CRANE_DATA_DRI is not a setting (did you mean CRANE_DATA_DIR?)"]


# --- data directories that cannot be made ------------------------------------------------------------

@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a directory\n")
    return path


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
@pytest.mark.parametrize("command", ["api", "worker"])
def test_api_and_worker_stop_in_one_line_when_the_data_dir_cannot_be_made(command, where, a_file):
    data_dir = str(a_file / "registry") if where == "under a file" else "/proc/registry-data"
    environ = {"PULP_REGISTRY_DATA_DIR": data_dir, "PULP_REGISTRY_MONGO_URL": "mongodb://127.0.0.1:1/",
               "PULP_REGISTRY_BROKER_URL": "redis://127.0.0.1:1/0"}
    built = []
    result = CliRunner().invoke(cli, [command], obj=ServerContext(environ=environ, build_services=built.append))
    assert result.exit_code == 2 and built == []
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"pulp-registry: configuration error: storage_path: cannot create {data_dir}/content: ")


def test_dev_stops_in_one_line_when_the_data_dir_cannot_be_made(a_file):
    result = run_command(["dev", "--data-dir", str(a_file / "registry")])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"pulp-registry: configuration error: storage_path: cannot create {a_file}/registry/content: "
        f"{a_file} is not a directory (data_dir is {a_file}/registry)"]


def test_crane_stops_in_one_line_on_a_data_dir_under_a_file(a_file):
    result = subprocess.run([console_script("crane"), "--data-dir", str(a_file / "published"),
                             "--bind", f"127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=60, env=clean_environment())
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert f"data_dir {a_file}/published does not exist" in result.stderr


# --- check-config: the effective settings, every secret hidden ---------------------------------------

def test_check_config_prints_the_effective_settings_with_every_secret_masked(tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text(yaml.safe_dump({
        "mongo_url": "mongodb://registry:mongo-secret-1@db:27017/",
        "broker_url": "amqp://registry:broker-secret-2@rabbit:5672//",
        "webhooks": [{"url": "https://hook:url-secret-3@hooks.example.com/registry", "secret": "hmac-secret-4"},
                     {"url": "https://other.example.com/"}],
        "ldap": {"url": "ldap://dir:389", "user_search_base": "dc=example", "bind_dn": "cn=svc",
                 "bind_password": "ldap-secret-5"},
    }))
    result = CliRunner().invoke(cli, ["check-config", "--config", str(config)],
                                obj=ServerContext(environ={"PULP_REGISTRY_API_BIND": "0.0.0.0:8081"}))
    assert result.exit_code == 0, result.output
    for secret in ("mongo-secret-1", "broker-secret-2", "url-secret-3", "hmac-secret-4", "ldap-secret-5"):
        assert secret not in result.output
    printed = yaml.safe_load(result.output)
    assert printed["api_bind"] == "0.0.0.0:8081"   # effective: the variable won
    assert printed["mongo_url"] == "mongodb://registry:***@db:27017/"
    assert printed["broker_url"] == "amqp://registry:***@rabbit:5672//"
    assert printed["webhooks"][0]["url"] == "https://hook:***@hooks.example.com/registry"
    assert printed["webhooks"][0]["secret"] == "***"
    assert printed["webhooks"][1]["secret"] == ""   # nothing to hide: shown as not set
    assert printed["ldap"]["bind_password"] == "***"
