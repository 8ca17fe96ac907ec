"""How registry-admin reaches the admin API: flags, environment, config file -> one HTTP session.

Precedence for each setting: command-line flag, then ``REGISTRY_ADMIN_*``
environment variable, then the config file (``~/.config/registry-admin/config.yaml``,
or the path in ``REGISTRY_ADMIN_CONFIG``). The config file holds the server
URL, whether to verify TLS, an optional CA bundle and the username, never the
password. Every failure becomes an ``AdminError``: one line on stderr and exit 1.
"""
from __future__ import annotations

import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import click
import requests
import urllib3
import yaml

PROG = "registry-admin"
CONFIG_ENV = "REGISTRY_ADMIN_CONFIG"
URL_ENV = "REGISTRY_ADMIN_URL"
USERNAME_ENV = "REGISTRY_ADMIN_USERNAME"
PASSWORD_ENV = "REGISTRY_ADMIN_PASSWORD"
CONFIG_KEYS = ("url", "verify_tls", "ca_bundle", "username")
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0


class AdminError(click.ClickException):
    """A failure the user sees as ``registry-admin: error: <one line>`` with exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", file=file, err=file is None)


@dataclass
class ConnectionOptions:
    """What the global command-line options said (``None`` where they said nothing)."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    verify: bool | None = None
    ca_bundle: str | None = None
    interactive: bool | None = None


@dataclass(frozen=True)
class ClientConfig:
    url: str
    username: str
    password: str
    verify: bool | str = True


def config_path(environ: Mapping[str, str]) -> Path:
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / PROG / "config.yaml"


def check_url(url: str) -> str:
    """The admin API's base URL, without a trailing slash; it must say http:// or https://."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AdminError(f"server URL {url!r} must start with http:// or https://, e.g. http://127.0.0.1:8080")
    return url.rstrip("/")


def load_config_file(path: Path) -> dict[str, Any]:
    """The config file's settings; a wrong key or value stops with a message naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AdminError(f"config file {path} is not valid YAML: {exc}") from None
    except OSError as exc:
        raise AdminError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise AdminError(f"config file {path}: expected a mapping of {', '.join(CONFIG_KEYS)}")
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            raise AdminError(f"config file {path}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        if key == "verify_tls" and not isinstance(value, bool):
            raise AdminError(f"config file {path}: verify_tls must be true or false, got {value!r}")
        if key != "verify_tls" and value is not None and not isinstance(value, str):
            raise AdminError(f"config file {path}: {key} must be a string, got {value!r}")
    if data.get("url"):
        try:
            data["url"] = check_url(data["url"])
        except AdminError as exc:
            raise AdminError(f"config file {path}: url: {exc.message}") from None
    return data


def write_config_file(path: Path, url: str, verify_tls: bool, username: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"url": url, "verify_tls": verify_tls, "username": username}
    text = ("# registry-admin settings; the password is never stored here "
            f"(pass --password or set {PASSWORD_ENV}).\n" + yaml.safe_dump(body, sort_keys=False))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _prompt_url(value: str) -> str:
    try:
        return check_url(value)
    except AdminError as exc:
        raise click.BadParameter(exc.message) from None


def offer_config_file(path: Path) -> dict[str, Any]:
    """First run without any configuration: ask for the settings and write them, as the original did."""
    click.echo(f"No registry-admin configuration found (looked for {path}).", err=True)
    if not click.confirm(f"Write a configuration file to {path} now?", default=True, err=True):
        raise AdminError(_how_to_configure(path))
    return prompt_config_file(path)


def prompt_config_file(path: Path) -> dict[str, Any]:
    """Ask for the server URL, TLS verification and username, and write them to ``path``."""
    url = click.prompt("Admin API URL", default="http://127.0.0.1:8080", value_proc=_prompt_url, err=True)
    verify_tls = click.confirm("Verify TLS certificates?", default=True, err=True)
    username = click.prompt("Username", default="admin", err=True)
    write_config_file(path, url, verify_tls, username)
    click.echo(f"Wrote {path}.", err=True)
    return {"url": url, "verify_tls": verify_tls, "username": username}


def _how_to_configure(path: Path) -> str:
    return (f"no server configured: pass --url, set {URL_ENV}, or write {path} "
            f"(keys: url, verify_tls, username); see registry-admin --help")


def is_interactive(options: ConnectionOptions) -> bool:
    if options.interactive is not None:
        return options.interactive
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_config(options: ConnectionOptions, environ: Mapping[str, str]) -> ClientConfig:
    """Combine flags, environment and config file; prompt for what is missing when interactive."""
    interactive = is_interactive(options)
    path = config_path(environ)
    file_settings: dict[str, Any] = {}
    if path.exists():
        file_settings = load_config_file(path)
    elif environ.get(CONFIG_ENV) and not (options.url or environ.get(URL_ENV)) and not interactive:
        raise AdminError(f"config file {path} (from {CONFIG_ENV}) does not exist")
    url = options.url or environ.get(URL_ENV) or file_settings.get("url")
    if not url:
        if not interactive:
            raise AdminError(_how_to_configure(path))
        file_settings = offer_config_file(path)
        url = file_settings["url"]
    url = check_url(url)

    username = options.username or environ.get(USERNAME_ENV) or file_settings.get("username")
    if not username:
        if not interactive:
            raise AdminError(f"no username: pass --username, set {USERNAME_ENV}, or add username to {path}")
        username = click.prompt("Username", err=True)
    password = options.password if options.password is not None else environ.get(PASSWORD_ENV)
    if password is None:
        if not interactive:
            raise AdminError(f"no password for {username}: pass --password or set {PASSWORD_ENV}")
        password = click.prompt(f"Password for {username} at {url}", hide_input=True, err=True)

    verify: bool | str = file_settings.get("verify_tls", True)
    if file_settings.get("ca_bundle") and verify:
        verify = str(Path(file_settings["ca_bundle"]).expanduser())
    if options.ca_bundle:
        verify = options.ca_bundle
    if options.verify is False:
        verify = False
    return ClientConfig(url=url, username=username, password=password, verify=verify)


def error_message(response: requests.Response) -> str:
    """The server's own words: the admin API's ``message`` or the registry's ``errors[0].message``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = f" ({first['code']})" if first.get("code") else ""
            return f"{first.get('message') or 'registry error'}{code}"
        if body.get("message"):
            field = f" [field {body['field']}]" if body.get("field") else ""
            return f"{body['message']}{field}"
    text = (response.text or "").strip().splitlines()
    return text[0][:200] if text else (response.reason or "no details")


class AdminClient:
    """A ``requests.Session`` bound to the admin URL; every failure is an ``AdminError``."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.base_url = config.url
        self.session = requests.Session()
        self.session.auth = (config.username, config.password)
        self.session.verify = config.verify
        if config.verify is False:
            # The user asked for no verification; one warning per request would bury the output.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers["User-Agent"] = f"{PROG}/0.1"

    def url(self, path: str) -> str:
        """An absolute URL for a path (``/pulp/api/v2/...``) or a Location the server sent."""
        return urljoin(self.base_url + "/", path)

    def request(self, method: str, path: str, expected: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        url = self.url(path)
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        # Per request: requests lets REQUESTS_CA_BUNDLE override a session's verify, but not this.
        kwargs.setdefault("verify", self.config.verify)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise AdminError(f"TLS connection to {self.base_url} failed: {_reason(exc)} "
                             "(pass --ca-bundle PATH, or --no-verify to skip the check)") from None
        except requests.exceptions.ConnectionError as exc:
            raise AdminError(f"could not reach {self.base_url}: {_reason(exc)}") from None
        except requests.exceptions.Timeout:
            raise AdminError(f"timed out waiting for {self.base_url}") from None
        except requests.exceptions.RequestException as exc:
            raise AdminError(f"request to {url} failed: {_reason(exc)}") from None
        if response.status_code not in tuple(expected):
            raise self.error_for(response, method)
        return response

    def error_for(self, response: requests.Response, method: str = "") -> AdminError:
        if response.status_code == 401:
            return AdminError(f"the server at {self.base_url} refused the credentials of user "
                              f"{self.config.username!r} (401 Unauthorized)")
        path = urlsplit(response.url).path if response.url else ""
        request = " ".join(part for part in (method, path) if part)
        return AdminError(f"{error_message(response)} (HTTP {response.status_code} from {request})")

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise AdminError(f"GET {path}: the server did not answer JSON") from None


def _reason(exc: BaseException) -> str:
    """A short reason from the exception chain (``connection refused`` rather than urllib3's prose)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"certificate not trusted ({current.verify_message or current.reason})"
        if isinstance(current, ssl.SSLError):
            hint = " (is the server speaking plain http?)" if current.reason == "WRONG_VERSION_NUMBER" else ""
            return f"{current.reason or current}{hint}"
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and "Name or service not known" in str(current):
            return "host name not known"
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = current.__cause__ or current.__context__ or nested or getattr(current, "reason", None)
        if current is not None and not isinstance(current, BaseException):
            current = None
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not known"
    return text.splitlines()[0][:200] if text else exc.__class__.__name__
