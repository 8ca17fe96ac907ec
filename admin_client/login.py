"""``registry-admin login`` and ``logout``: an API token in the config file instead of a password each time.

``login`` sends the password once (HTTP Basic to ``actions/login/``) and keeps
the token the server answers, with its expiry, the URL and the login, in the
config file (0600, replaced atomically); the password is never written.
Later commands send the token while it is valid for that server, unless a
password is given by flag or environment. ``logout`` revokes the token on the
server and removes it from the file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from admin_client.connection import (PASSWORD_ENV, TOKEN_KEYS, URL_ENV, USERNAME_ENV, AdminClient,
                                     AdminError, ClientConfig, check_url, config_path, is_interactive, load_config_file,
                                     tls_verify, token_expiry, write_config_file)
from admin_client.listing import API, short_time


def current_settings() -> tuple[Path, dict[str, Any]]:
    """The config file's path and settings; login creates the file, so it need not exist yet."""
    path = config_path(os.environ)
    return path, load_config_file(path) if path.exists() else {}


@click.command("login", short_help="Log in once; later commands use the stored token.", epilog=f"""\b
Examples:
  registry-admin login --url https://registry.example.com:8080 --username alice
  REGISTRY_ADMIN_PASSWORD=... registry-admin login        # no prompt
  registry-admin list                                      # no password needed until the login expires
\b
A password given later by --password or {PASSWORD_ENV} is used instead of the token.""")
@click.option("--url", metavar="URL", help=f"Admin API URL [default: --url before the command, {URL_ENV}, "
                                           "or the config file].")
@click.option("--username", "-u", metavar="NAME", help=f"Login [default: --username before the command, "
                                                       f"{USERNAME_ENV}, or the config file].")
@click.option("--password", "-p", metavar="PASSWORD", help=f"Password [env {PASSWORD_ENV}; prompted, hidden, "
                                                           "if unset].")
@click.pass_context
def login(ctx: click.Context, url: str | None, username: str | None, password: str | None) -> None:
    """Log in and keep an API token (never the password) in the config file for later commands."""
    options = ctx.obj.options
    interactive = is_interactive(options)
    path, file_settings = current_settings()
    url = url or options.url or os.environ.get(URL_ENV) or file_settings.get("url")
    if not url:
        if not interactive:
            raise AdminError(f"no server to log in to: pass --url or set {URL_ENV}")
        url = click.prompt("Admin API URL", default="http://127.0.0.1:8080", err=True)
    url = check_url(url)
    same_server = file_settings.get("url") == url
    username = (username or options.username or os.environ.get(USERNAME_ENV)
                or (file_settings.get("username") if same_server else None))
    if not username:
        if not interactive:
            raise AdminError(f"no username: pass --username or set {USERNAME_ENV}")
        username = click.prompt("Username", err=True)
    if password is None:
        password = options.password if options.password is not None else os.environ.get(PASSWORD_ENV)
    if password is None:
        if not interactive:
            raise AdminError(f"no password for {username}: pass --password or set {PASSWORD_ENV}")
        password = click.prompt(f"Password for {username} at {url}", hide_input=True, err=True)

    verify = tls_verify(options, file_settings)
    client = AdminClient(ClientConfig(url=url, username=username, password=password, verify=verify))
    answer = client.send_json("POST", f"{API}/actions/login/")
    if not isinstance(answer, dict) or not answer.get("token"):
        raise AdminError(f"POST {API}/actions/login/: the server answered no token")

    settings: dict[str, Any] = dict(file_settings)
    settings.update(url=url, username=answer.get("login") or username, token=answer["token"],
                    token_expires=answer.get("expires"))
    settings.setdefault("verify_tls", options.verify is not False)
    write_config_file(path, settings)
    until = f" until {short_time(answer.get('expires'))} UTC" if answer.get("expires") else ""
    click.echo(f"Logged in to {url} as {settings['username']}{until}; the token is in {path}.")


@click.command("logout", short_help="Revoke the stored login token.", epilog="""\b
Example:
  registry-admin logout""")
@click.pass_context
def logout(ctx: click.Context) -> None:
    """Revoke the login token on the server and remove it from the config file."""
    options = ctx.obj.options
    path, file_settings = current_settings()
    token = file_settings.get("token")
    if not token:
        click.echo(f"Not logged in (no token in {path}).")
        return
    url = check_url(file_settings.get("url") or "")
    settings = {key: value for key, value in file_settings.items() if key not in TOKEN_KEYS}
    client = AdminClient(ClientConfig(url=url, username=file_settings.get("username") or "", password=None,
                                      verify=tls_verify(options, file_settings), token=token))
    try:
        response = client.request("POST", f"{API}/actions/logout/", expected=(200, 204, 401))
    except AdminError as exc:
        # The token leaves this machine in any case; say that the server may still accept it.
        write_config_file(path, settings)
        expires = token_expiry(file_settings)
        until = f" until {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
        raise AdminError(f"removed the token from {path}, but could not revoke it on the server "
                         f"(it stays valid there{until}): {exc.message}") from None
    write_config_file(path, settings)
    if response.status_code == 401:
        click.echo(f"Logged out of {url} (the login had already expired); removed the token from {path}.")
    else:
        click.echo(f"Logged out of {url}; the token is revoked and removed from {path}.")
