"""Crane's settings: YAML file, CRANE_* variables, overrides; a wrong key or value names itself."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from crane.config import CraneSettings, load_crane_settings
from pulp_registry.config import ConfigError
from tests.servers import console_script


def test_defaults_are_usable():
    settings = load_crane_settings({})
    assert settings.data_dir == "/var/lib/pulp-registry/published"
    assert settings.bind == "127.0.0.1:5000"
    assert 3 <= settings.workers <= 12
    assert settings.poll_interval == 1.0


def test_file_then_environment_then_overrides(tmp_path: Path):
    config = tmp_path / "crane.yaml"
    config.write_text("data_dir: /srv/published\nbind: 0.0.0.0:5001\nworkers: 3\npoll_interval: 2\n")
    settings = load_crane_settings({"CRANE_CONFIG": str(config), "CRANE_WORKERS": "5"},
                                   {"bind": "127.0.0.1:6000", "threads": None})
    assert (settings.data_dir, settings.bind, settings.workers, settings.poll_interval, settings.threads) == \
        ("/srv/published", "127.0.0.1:6000", 5, 2.0, 4)


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path):
    config = tmp_path / "crane.yaml"
    config.write_text("data_dri: /srv\n")
    with pytest.raises(ConfigError, match="data_dri"):
        load_crane_settings({"CRANE_CONFIG": str(config)})


@pytest.mark.parametrize("key, value", [("bind", "localhost"), ("workers", -1), ("poll_interval", 0),
                                        ("blob_serving", "carrier-pigeon"), ("threads", 0)])
def test_a_wrong_value_is_named(key, value):
    with pytest.raises(ConfigError, match=key):
        load_crane_settings({}, {key: value})


def test_redirect_mode_needs_a_url_prefix():
    with pytest.raises(ConfigError, match="blob_url_prefix"):
        CraneSettings(blob_serving="redirect")


def test_the_crane_command_stops_on_a_wrong_setting_naming_it(tmp_path: Path):
    result = subprocess.run([console_script("crane"), "--data-dir", str(tmp_path), "--bind", "nowhere"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "bind" in result.stderr and "nowhere" in result.stderr


def test_the_crane_command_refuses_a_tree_in_an_unknown_format(tmp_path: Path):
    (tmp_path / "FORMAT").write_text("pulp-registry-published 7\n")
    result = subprocess.run([console_script("crane"), "--data-dir", str(tmp_path), "--bind", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "pulp-registry-published 7" in result.stderr


def test_the_crane_command_stops_at_once_on_a_port_in_use(tmp_path: Path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([console_script("crane"), "--data-dir", str(tmp_path), "--bind", f"127.0.0.1:{port}"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
