"""Settings: YAML file, then environment, then overrides; a wrong key or value is named."""
from __future__ import annotations

import dataclasses
import re

import pytest

from pulp_registry.config import ConfigError, Settings, load_admin_settings, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def test_defaults_put_storage_and_published_tree_below_the_data_dir():
    settings = Settings(data_dir="/srv/registry")
    assert settings.storage_path == "/srv/registry/content"
    assert settings.published_dir == "/srv/registry/published"
    assert settings.max_manifest_size == 4 * 1024 * 1024


def test_no_file_and_no_environment_gives_the_defaults():
    assert load_admin_settings({}) == Settings()


def test_yaml_file_named_by_pulp_registry_config_is_read(tmp_path):
    path = write(tmp_path, "data_dir: /srv/r\nmongo_url: mongomock://\napi_workers: 4\n")
    settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})
    assert settings.data_dir == "/srv/r" and settings.mongo_url == "mongomock://"
    assert settings.api_workers == 4 and settings.published_dir == "/srv/r/published"


def test_environment_overrides_the_file_and_overrides_win_over_both(tmp_path):
    path = write(tmp_path, "data_dir: /from/file\npull_host: file:5000\nlog_level: DEBUG\n")
    environ = {"PULP_REGISTRY_CONFIG": str(path), "PULP_REGISTRY_PULL_HOST": "env:5000",
               "PULP_REGISTRY_API_WORKERS": "8", "PULP_REGISTRY_DATA_DIR": "/from/env"}
    settings = load_admin_settings(environ, {"data_dir": "/from/override", "log_level": None})
    assert settings.pull_host == "env:5000"
    assert settings.api_workers == 8
    assert settings.data_dir == "/from/override"
    assert settings.log_level == "DEBUG"  # an override of None leaves the value alone


def test_numbers_come_from_the_environment_as_text():
    settings = load_admin_settings({"PULP_REGISTRY_TASK_LOCK_TIMEOUT": "60",
                                    "PULP_REGISTRY_MAX_MANIFEST_SIZE": "1024"})
    assert settings.task_lock_timeout == 60 and settings.max_manifest_size == 1024


def test_unknown_key_in_the_file_is_named(tmp_path):
    path = write(tmp_path, "data_dir: /x\nbroker_ulr: redis://x\n")
    with pytest.raises(ConfigError, match="broker_ulr: unknown setting"):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})


def test_unknown_override_is_named():
    with pytest.raises(ConfigError, match="colour: unknown setting"):
        load_admin_settings({}, {"colour": "blue"})


def test_wrong_type_in_the_file_is_named(tmp_path):
    path = write(tmp_path, "api_workers: many\n")
    with pytest.raises(ConfigError, match="api_workers: expected int"):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})


def test_wrong_type_in_the_environment_names_the_variable():
    with pytest.raises(ConfigError, match="PULP_REGISTRY_MAX_MANIFEST_SIZE: expected int"):
        load_admin_settings({"PULP_REGISTRY_MAX_MANIFEST_SIZE": "4MB"})


def test_a_mapping_where_a_string_belongs_is_refused(tmp_path):
    path = write(tmp_path, "data_dir: {nested: true}\n")
    with pytest.raises(ConfigError, match="data_dir: expected str"):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})


@pytest.mark.parametrize("key,value", [
    ("mongo_url", "postgres://db"),
    ("storage_driver", "azure"),
    ("api_workers", 0),
    ("task_lock_timeout", -5),
    ("max_manifest_size", 0),
    ("log_level", "LOUD"),
])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        load_admin_settings({}, {key: value})


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(missing)})


@pytest.mark.parametrize("text,message", [("data_dir: [unclosed\n", "not valid YAML"),
                                          ("- a\n- b\n", "mapping")])
def test_file_that_is_not_a_mapping_is_refused(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})


def test_empty_file_gives_the_defaults(tmp_path):
    path = write(tmp_path, "")
    assert load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)}) == Settings()


@dataclasses.dataclass(frozen=True)
class SmallSettings:
    enabled: bool = False
    ratio: float = 1.0
    name: str = "x"


@pytest.mark.parametrize("raw,expected", [("yes", True), ("0", False), ("TRUE", True), ("off", False)])
def test_booleans_from_the_environment(raw, expected):
    assert load_settings(SmallSettings, None, {"APP_ENABLED": raw}, "APP_").enabled is expected


def test_other_prefixes_and_floats_work_for_other_services():
    settings = load_settings(SmallSettings, None, {"APP_RATIO": "0.5", "APP_NAME": "n"}, "APP_")
    assert settings == SmallSettings(ratio=0.5, name="n")
    with pytest.raises(ConfigError, match="APP_ENABLED: expected bool"):
        load_settings(SmallSettings, None, {"APP_ENABLED": "perhaps"}, "APP_")
    with pytest.raises(ConfigError, match="APP_RATIO: expected float"):
        load_settings(SmallSettings, None, {"APP_RATIO": "half"}, "APP_")


def _readme_table(section_start: str, section_end: str) -> list[tuple[str, str]]:
    """(key, environment variable) rows of a settings table in README.md."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split(section_start, 1)[1].split(section_end, 1)[0]
    return re.findall(r"^\| `(\w+)` \| `(\w+)` \|", section, re.M)


def test_readme_documents_every_admin_setting_with_its_environment_variable():
    rows = _readme_table("### Admin side", "### Crane")
    assert [key for key, _ in rows] == [field.name for field in dataclasses.fields(Settings)]
    assert all(env == f"PULP_REGISTRY_{key.upper()}" for key, env in rows)


def test_readme_documents_every_crane_setting_with_its_environment_variable():
    from crane.config import CraneSettings

    rows = _readme_table("### Crane", "## Running the services separately")
    assert [key for key, _ in rows] == [field.name for field in dataclasses.fields(CraneSettings)]
    assert all(env == f"CRANE_{key.upper()}" for key, env in rows)


def test_the_ldap_section_comes_from_the_file_and_each_key_from_its_own_variable(tmp_path):
    path = write(tmp_path, "ldap:\n  url: ldap://ldap.example:389\n  user_search_base: ou=people,dc=example\n"
                           "  bind_dn: cn=registry,dc=example\n  group_roles:\n    admins: super-users\n"
                           "    devs: [pushers, readers]\n")
    settings = load_admin_settings({"PULP_REGISTRY_CONFIG": str(path), "PULP_REGISTRY_LDAP_BIND_PASSWORD": "pw",
                                    "PULP_REGISTRY_LDAP_NESTED_GROUPS": "true",
                                    "PULP_REGISTRY_LDAP_DEFAULT_ROLES": "readers,viewers"})
    ldap = settings.ldap
    assert ldap.enabled and ldap.bind_password == "pw" and ldap.nested_groups is True
    assert ldap.group_roles == {"admins": ["super-users"], "devs": ["pushers", "readers"]}
    assert ldap.default_roles == ["readers", "viewers"]
    assert "pw" not in repr(settings)
    assert not load_admin_settings({}).ldap.enabled


@pytest.mark.parametrize("environ, message", [
    ({"PULP_REGISTRY_LDAP_URL": "http://ldap.example"}, "ldap.url: 'http://ldap.example' is not an ldap://"),
    ({"PULP_REGISTRY_LDAP_URL": "ldap://x"}, "ldap.user_search_base: required"),
    ({"PULP_REGISTRY_LDAP_URL": "ldap://x", "PULP_REGISTRY_LDAP_USER_SEARCH_BASE": "dc=x",
      "PULP_REGISTRY_LDAP_USER_FILTER": "(uid=*)"}, "must contain {login}"),
    ({"PULP_REGISTRY_LDAP_BIND_DN": "cn=x"}, "ldap.bind_password: required with ldap.bind_dn"),
    ({"PULP_REGISTRY_LDAP_NESTED_GROUPS": "perhaps"}, "ldap.nested_groups: expected bool"),
    ({"PULP_REGISTRY_TOKEN_REALM": "registry.example/token"}, "token_realm: 'registry.example/token' must be"),
    ({"PULP_REGISTRY_BCRYPT_ROUNDS": "3"}, "bcrypt_rounds: must be between 4 and 16"),
])
def test_a_wrong_access_setting_is_named(environ, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_admin_settings(environ)


def test_an_unknown_key_of_the_ldap_section_is_named(tmp_path):
    path = write(tmp_path, "ldap:\n  ulr: ldap://x\n")
    with pytest.raises(ConfigError, match="ldap.ulr: unknown setting"):
        load_admin_settings({"PULP_REGISTRY_CONFIG": str(path)})
