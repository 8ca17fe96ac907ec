"""``registry-admin login``/``logout``: a token in a private config file instead of a password on every call."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
import yaml

from tests.cli.conftest import json_output, one_error_line
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD
from tests.images import build_oci_layout

NO_PASSWORD = {"REGISTRY_ADMIN_PASSWORD": None}


def config_file(server) -> Path:
    return Path(server.env["XDG_CONFIG_HOME"]) / "registry-admin" / "config.yaml"


def whoami_with(server, token: str) -> requests.Response:
    return requests.get(f"{server.url}/pulp/api/v2/whoami/", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def logged_in(run_cli, server) -> dict:
    result = run_cli("login")
    assert result.exit_code == 0, result.output
    return yaml.safe_load(config_file(server).read_text())


def test_login_writes_a_private_file_with_a_token_and_no_password(run_cli, server):
    result = run_cli("login", "--url", server.url, "--username", ADMIN_LOGIN, env=NO_PASSWORD | {
        "REGISTRY_ADMIN_URL": None, "REGISTRY_ADMIN_USERNAME": None, "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert result.exit_code == 0, result.output
    assert f"Logged in to {server.url} as {ADMIN_LOGIN}" in result.stdout
    path = config_file(server)
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    assert ADMIN_PASSWORD not in text
    settings = yaml.safe_load(text)
    assert settings["url"] == server.url and settings["username"] == ADMIN_LOGIN
    assert settings["token"] and settings["token_expires"]
    expires = datetime.fromisoformat(settings["token_expires"].replace("Z", "+00:00"))
    assert expires > datetime.now(timezone.utc)
    assert whoami_with(server, settings["token"]).status_code == 200
    assert not list(path.parent.glob("*.tmp")), "no temporary file is left behind"


def test_commands_after_login_need_no_password_and_send_the_token(run_cli, server, tmp_path):
    logged_in(run_cli, server)
    server.log.clear()
    result = run_cli("whoami", "-o", "json", env=NO_PASSWORD | {"REGISTRY_ADMIN_URL": None,
                                                                 "REGISTRY_ADMIN_USERNAME": None})
    assert json_output(result)["login"] == ADMIN_LOGIN
    assert server.log.schemes == ["Bearer"]

    layout = build_oci_layout(tmp_path, "v1")
    pushed = run_cli("push", "team/app:v1", "--archive", str(layout), env=NO_PASSWORD)
    assert pushed.exit_code == 0, pushed.output
    assert run_cli("repo", "update", "team/app", "--protected", env=NO_PASSWORD).exit_code == 0


def test_a_password_from_the_environment_wins_over_the_token(run_cli, server):
    logged_in(run_cli, server)
    server.log.clear()
    line = one_error_line(run_cli("whoami", env={"REGISTRY_ADMIN_PASSWORD": "wrong"}))
    assert "refused the credentials of user 'admin'" in line
    assert server.log.schemes == ["Basic"]


def test_logout_revokes_the_token_and_removes_it_from_the_file(run_cli, server):
    token = logged_in(run_cli, server)["token"]
    result = run_cli("logout", env=NO_PASSWORD)
    assert result.exit_code == 0, result.output
    assert "Logged out" in result.stdout
    settings = yaml.safe_load(config_file(server).read_text())
    assert "token" not in settings and "token_expires" not in settings
    assert settings["url"] == server.url and settings["username"] == ADMIN_LOGIN
    assert whoami_with(server, token).status_code == 401
    assert "no password" in one_error_line(run_cli("whoami", env=NO_PASSWORD))
    assert "Not logged in" in run_cli("logout", env=NO_PASSWORD).stdout


def test_a_revoked_token_says_to_log_in_again(run_cli, server):
    settings = logged_in(run_cli, server)
    requests.post(f"{server.url}/pulp/api/v2/actions/logout/",
                  headers={"Authorization": f"Bearer {settings['token']}"}, timeout=30)
    line = one_error_line(run_cli("whoami", env=NO_PASSWORD))
    assert line == "registry-admin: error: your login has expired; run registry-admin login"
    # Logging out of an already revoked login is fine, and clears the file.
    assert run_cli("logout", env=NO_PASSWORD).exit_code == 0
    assert "token" not in yaml.safe_load(config_file(server).read_text())


def test_an_expired_token_says_to_log_in_again_without_asking_the_server(run_cli, server):
    settings = logged_in(run_cli, server)
    settings["token_expires"] = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    config_file(server).write_text(yaml.safe_dump(settings))
    server.log.clear()
    line = one_error_line(run_cli("whoami", env=NO_PASSWORD))
    assert line == "registry-admin: error: your login has expired; run registry-admin login"
    assert server.log.requests == []


def test_the_token_goes_only_to_the_server_and_user_it_came_from(run_cli, server):
    logged_in(run_cli, server)
    other_url = server.url.replace("127.0.0.1", "localhost")
    server.log.clear()
    assert "no password" in one_error_line(run_cli("whoami", env=NO_PASSWORD | {"REGISTRY_ADMIN_URL": other_url}))
    assert "no password" in one_error_line(run_cli("whoami", env=NO_PASSWORD | {"REGISTRY_ADMIN_USERNAME": "bob"}))
    assert server.log.requests == []


def test_login_with_a_wrong_password_is_one_line_and_writes_nothing(run_cli, server):
    line = one_error_line(run_cli("login", env={"REGISTRY_ADMIN_PASSWORD": "wrong"}))
    assert "refused the credentials of user 'admin'" in line
    assert not config_file(server).exists()


def test_login_without_a_password_and_terminal_is_one_line(run_cli, server):
    line = one_error_line(run_cli("login", env=NO_PASSWORD))
    assert "no password" in line and "REGISTRY_ADMIN_PASSWORD" in line


def test_login_asks_for_the_password_hidden_when_interactive(run_cli, server):
    result = run_cli("--interactive", "login", env=NO_PASSWORD, input=f"{ADMIN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.output
    assert yaml.safe_load(config_file(server).read_text())["token"]


def test_login_keeps_the_other_settings_of_the_config_file(run_cli, server):
    path = config_file(server)
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"url": server.url, "verify_tls": False, "username": ADMIN_LOGIN}))
    result = run_cli("login", env={"REGISTRY_ADMIN_URL": None, "REGISTRY_ADMIN_USERNAME": None})
    assert result.exit_code == 0, result.output
    settings = yaml.safe_load(path.read_text())
    assert settings["verify_tls"] is False and settings["url"] == server.url and settings["token"]


def test_too_many_failed_logins_say_when_to_try_again(run_cli, server):
    lines = [one_error_line(run_cli("login", env={"REGISTRY_ADMIN_PASSWORD": "wrong"})) for _ in range(11)]
    assert "refused the credentials" in lines[0]
    assert "429" in lines[-1] and "try again in" in lines[-1]


def test_changing_the_password_ends_the_login(run_cli, server):
    logged_in(run_cli, server)
    assert run_cli("user", "update", ADMIN_LOGIN, "--password", "a-new-password").exit_code == 0
    line = one_error_line(run_cli("whoami", env=NO_PASSWORD))
    assert "your login has expired" in line


def test_login_creates_the_config_file_named_by_the_environment(run_cli, server, tmp_path):
    path = tmp_path / "elsewhere" / "registry-admin.yaml"
    result = run_cli("login", "--url", server.url, env={"REGISTRY_ADMIN_CONFIG": str(path), "REGISTRY_ADMIN_URL": None})
    assert result.exit_code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(path.read_text())["url"] == server.url
    again = run_cli("whoami", env={"REGISTRY_ADMIN_CONFIG": str(path), "REGISTRY_ADMIN_URL": None, **NO_PASSWORD})
    assert again.exit_code == 0, again.output


def test_an_expired_login_asks_for_the_password_when_interactive(run_cli, server):
    settings = logged_in(run_cli, server)
    settings["token_expires"] = "2000-01-01T00:00:00Z"
    config_file(server).write_text(yaml.safe_dump(settings))
    result = run_cli("--interactive", "whoami", "-o", "json", env=NO_PASSWORD, input=f"{ADMIN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Your login has expired" in result.stderr
    assert '"login": "admin"' in result.stdout
