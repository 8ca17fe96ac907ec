"""Where registry-admin finds its server and credentials: flags, environment, config file, first run."""
from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.conftest import one_error_line
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD

NO_SETTINGS = {"REGISTRY_ADMIN_URL": None, "REGISTRY_ADMIN_USERNAME": None, "REGISTRY_ADMIN_PASSWORD": None}


def config_file(server, tmp_path: Path) -> Path:
    return Path(server.env["XDG_CONFIG_HOME"]) / "registry-admin" / "config.yaml"


def test_environment_variables_are_enough(run_cli, server):
    result = run_cli("list", "repos")
    assert result.exit_code == 0, result.output


def test_flags_are_enough_and_win_over_the_environment(run_cli, server):
    result = run_cli("--url", server.url, "--username", ADMIN_LOGIN, "--password", ADMIN_PASSWORD, "list", "repos",
                     env={"REGISTRY_ADMIN_URL": "http://127.0.0.1:9", "REGISTRY_ADMIN_PASSWORD": "wrong"})
    assert result.exit_code == 0, result.output


def test_first_interactive_run_offers_to_write_the_config_file(run_cli, server, tmp_path):
    answers = f"y\n{server.url}\ny\n{ADMIN_LOGIN}\n{ADMIN_PASSWORD}\n"
    result = run_cli("--interactive", "list", "repos", env=NO_SETTINGS, input=answers)
    assert result.exit_code == 0, result.output
    assert "No repositories yet" in result.stdout
    path = config_file(server, tmp_path)
    assert yaml.safe_load(path.read_text()) == {"url": server.url, "verify_tls": True, "username": ADMIN_LOGIN}
    assert ADMIN_PASSWORD not in path.read_text(), "the password is never written to the config file"
    assert path.stat().st_mode & 0o077 == 0

    # The next run reads it: only the password is needed.
    again = run_cli("list", "repos", env={**NO_SETTINGS, "REGISTRY_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert again.exit_code == 0, again.output


def test_first_run_prompts_again_for_a_url_without_scheme(run_cli, server, tmp_path):
    answers = f"y\n127.0.0.1:8080\n{server.url}\nn\n{ADMIN_LOGIN}\n{ADMIN_PASSWORD}\n"
    result = run_cli("--interactive", "list", "repos", env=NO_SETTINGS, input=answers)
    assert result.exit_code == 0, result.output
    assert "must start with http:// or https://" in result.stderr
    assert yaml.safe_load(config_file(server, tmp_path).read_text())["verify_tls"] is False


def test_declining_the_offer_says_how_to_configure(run_cli, server, tmp_path):
    result = run_cli("--interactive", "list", "repos", env=NO_SETTINGS, input="n\n")
    assert "no server configured" in one_error_line(result)
    assert not config_file(server, tmp_path).exists()


def test_non_interactive_run_without_settings_is_one_line_saying_how_to_configure(run_cli, server, tmp_path):
    line = one_error_line(run_cli("list", "repos", env=NO_SETTINGS))
    assert "--url" in line and "REGISTRY_ADMIN_URL" in line and "config.yaml" in line
    assert not config_file(server, tmp_path).exists()


def test_missing_password_when_not_interactive_is_one_line(run_cli, server):
    line = one_error_line(run_cli("list", "repos", env={"REGISTRY_ADMIN_PASSWORD": None}))
    assert "no password" in line and "REGISTRY_ADMIN_PASSWORD" in line


def test_password_is_prompted_when_interactive(run_cli, server):
    result = run_cli("--interactive", "list", "repos", env={"REGISTRY_ADMIN_PASSWORD": None},
                     input=f"{ADMIN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.output, "the password prompt hides what is typed"


def test_config_file_named_by_environment_is_read(run_cli, server, tmp_path):
    path = tmp_path / "elsewhere.yaml"
    path.write_text(yaml.safe_dump({"url": server.url, "verify_tls": True, "username": ADMIN_LOGIN}))
    result = run_cli("list", "repos", env={"REGISTRY_ADMIN_URL": None, "REGISTRY_ADMIN_USERNAME": None,
                                           "REGISTRY_ADMIN_CONFIG": str(path)})
    assert result.exit_code == 0, result.output


def test_config_file_with_an_unknown_key_names_it(run_cli, server, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("url: http://127.0.0.1:8080\npasword: oops\n")
    line = one_error_line(run_cli("list", "repos", env={**NO_SETTINGS, "REGISTRY_ADMIN_CONFIG": str(path)}))
    assert "unknown key 'pasword'" in line and str(path) in line


def test_config_file_with_a_wrong_value_names_it(run_cli, server, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("url: http://127.0.0.1:8080\nverify_tls: sometimes\n")
    line = one_error_line(run_cli("list", "repos", env={**NO_SETTINGS, "REGISTRY_ADMIN_CONFIG": str(path)}))
    assert "verify_tls" in line


def test_url_without_scheme_is_one_line(run_cli, server):
    assert "must start with http://" in one_error_line(run_cli("--url", "127.0.0.1:8080", "list", "repos"))


def test_configure_writes_the_file_on_request(run_cli, server, tmp_path):
    result = run_cli("configure", env=NO_SETTINGS, input=f"{server.url}\ny\noperator\n")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(config_file(server, tmp_path).read_text())["username"] == "operator"


def test_https_to_a_plain_http_server_is_one_line(run_cli, server):
    url = server.url.replace("http://", "https://")
    line = one_error_line(run_cli("--url", url, "list", "repos"))
    assert url in line


def test_tls_server_with_an_untrusted_certificate_is_refused_unless_told(run_cli, server, app, tmp_path):
    """A self-signed certificate: refused by default, accepted with --ca-bundle or --no-verify."""
    import threading

    from werkzeug.serving import make_server, make_ssl_devcert

    certificate, key = make_ssl_devcert(str(tmp_path / "tls"), host="localhost")
    tls = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(certificate, key))
    thread = threading.Thread(target=tls.serve_forever, daemon=True)
    thread.start()
    url = f"https://localhost:{tls.server_port}"
    try:
        line = one_error_line(run_cli("--url", url, "list", "repos"))
        assert f"TLS connection to {url} failed" in line and "--ca-bundle" in line

        trusted = run_cli("--url", url, "--ca-bundle", certificate, "list", "repos")
        assert trusted.exit_code == 0, trusted.output

        unverified = run_cli("--url", url, "--no-verify", "list", "repos")
        assert unverified.exit_code == 0, unverified.output
        assert "Warning" not in unverified.stderr
    finally:
        tls.shutdown()
        thread.join(timeout=30)
        tls.server_close()
