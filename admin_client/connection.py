"""How registry-admin reaches the admin API: flags, environment, config file -> one HTTP session.

Precedence for each setting: command-line flag, then ``REGISTRY_ADMIN_*``
environment variable, then the config file (``~/.config/registry-admin/config.yaml``,
or the path in ``REGISTRY_ADMIN_CONFIG``). The config file holds the server
URL, whether to verify TLS, an optional CA bundle and the username, never the
password; after ``registry-admin login`` it also holds an API token and when it
expires. Credentials: a password given by flag or environment is sent as HTTP
Basic; otherwise an unexpired token for the same server is sent as
``Authorization: Bearer``; otherwise the password is prompted for. Every
failure becomes an ``AdminError``: one line on stderr and exit 1.
"""
from __future__ import annotations

import os
import ssl
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
CONFIG_KEYS = ("url", "verify_tls", "ca_bundle", "username", "token", "token_expires")
#: The keys ``registry-admin login`` writes and ``logout`` removes.
TOKEN_KEYS = ("token", "token_expires")
#: A token this close to its expiry is not sent: the command could outlive it.
TOKEN_MARGIN = timedelta(seconds=10)
LOGIN_EXPIRED = "your login has expired; run registry-admin login"
API = "/pulp/api/v2"
#: Every answer of the registry protocol carries it; the admin API's own paths (/pulp/...) never do.
REGISTRY_API_HEADER = "Docker-Distribution-API-Version"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0


class AdminError(click.ClickException):
    """A failure the user sees as ``registry-admin: error: <one line>`` with exit status 1."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.format_message()}", file=file, err=file is None)


class UsageProblem(AdminError):
    """Options that do not fit together: one line like every other error, with click's usage exit status."""

    exit_code = 2


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
    """Where to connect and as whom: Basic with ``password``, or Bearer with ``token`` (from ``login``)."""

    url: str
    username: str
    password: str | None
    verify: bool | str = True
    token: str | None = None


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
        if key == "token_expires" and isinstance(value, datetime):
            data[key] = value = value.isoformat()  # an unquoted time in a hand-edited file
        if key != "verify_tls" and value is not None and not isinstance(value, str):
            raise AdminError(f"config file {path}: {key} must be a string, got {value!r}")
    if data.get("url"):
        try:
            data["url"] = check_url(data["url"])
        except AdminError as exc:
            raise AdminError(f"config file {path}: url: {exc.message}") from None
    return data


def write_config_file(path: Path, settings: Mapping[str, Any]) -> None:
    """Replace the config file atomically: a private (0600) temporary file beside it, fsynced, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {key: settings[key] for key in CONFIG_KEYS if settings.get(key) is not None}
    text = ("# registry-admin settings; the password is never stored here "
            f"(pass --password or set {PASSWORD_ENV}).\n")
    if body.get("token"):
        text += "# token: from registry-admin login, valid until token_expires; registry-admin logout revokes it.\n"
    text += yaml.safe_dump(body, sort_keys=False)
    descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


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
    write_config_file(path, {"url": url, "verify_tls": verify_tls, "username": username})
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


def token_expiry(settings: Mapping[str, Any]) -> datetime | None:
    """When the stored token expires (UTC), ``None`` when the file does not say."""
    value = settings.get("token_expires")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)  # unreadable: treat as expired
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def stored_token(settings: Mapping[str, Any], url: str, username: str | None,
                 now: datetime | None = None) -> tuple[str | None, bool]:
    """(the token to send, whether a token for this server and user is stored but has expired)."""
    token = settings.get("token")
    if not token or not settings.get("url") or check_url(settings["url"]) != url:
        return None, False
    if username and settings.get("username") and username != settings["username"]:
        return None, False  # logged in as someone else: that token must not act for this user
    expires = token_expiry(settings)
    now = now or datetime.now(timezone.utc)
    if expires is not None and expires - TOKEN_MARGIN <= now:
        return None, True
    return token, False


def tls_verify(options: ConnectionOptions, file_settings: Mapping[str, Any]) -> bool | str:
    """``requests``' verify: the config file's verify_tls/ca_bundle, overridden by --ca-bundle or --no-verify."""
    verify: bool | str = file_settings.get("verify_tls", True)
    if file_settings.get("ca_bundle") and verify:
        verify = str(Path(file_settings["ca_bundle"]).expanduser())
    if options.ca_bundle:
        verify = options.ca_bundle
    if options.verify is False:
        verify = False
    return verify


def read_settings(options: ConnectionOptions, environ: Mapping[str, str]) -> tuple[Path, dict[str, Any]]:
    """The config file's path and settings (empty when there is none)."""
    path = config_path(environ)
    if path.exists():
        return path, load_config_file(path)
    if environ.get(CONFIG_ENV) and not (options.url or environ.get(URL_ENV)) and not is_interactive(options):
        raise AdminError(f"config file {path} (from {CONFIG_ENV}) does not exist")
    return path, {}


def resolve_config(options: ConnectionOptions, environ: Mapping[str, str]) -> ClientConfig:
    """Combine flags, environment and config file; prompt for what is missing when interactive."""
    interactive = is_interactive(options)
    path, file_settings = read_settings(options, environ)
    url = options.url or environ.get(URL_ENV) or file_settings.get("url")
    if not url:
        if not interactive:
            raise AdminError(_how_to_configure(path))
        file_settings = offer_config_file(path)
        url = file_settings["url"]
    url = check_url(url)
    verify = tls_verify(options, file_settings)

    named_user = options.username or environ.get(USERNAME_ENV)
    password = options.password if options.password is not None else environ.get(PASSWORD_ENV)
    if password is None:
        token, expired = stored_token(file_settings, url, named_user)
        if token is not None:
            return ClientConfig(url=url, username=file_settings.get("username") or named_user or "",
                                password=None, verify=verify, token=token)
        if expired and not interactive:
            raise AdminError(LOGIN_EXPIRED)
        if expired:
            click.echo("Your login has expired (registry-admin login starts a new one).", err=True)

    username = named_user or file_settings.get("username")
    if not username:
        if not interactive:
            raise AdminError(f"no username: pass --username, set {USERNAME_ENV}, or add username to {path}")
        username = click.prompt("Username", err=True)
    if password is None:
        if not interactive:
            raise AdminError(f"no password for {username}: pass --password, set {PASSWORD_ENV}, "
                             "or run registry-admin login")
        password = click.prompt(f"Password for {username} at {url}", hide_input=True, err=True)
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


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>`` (an auth object, so ``requests`` never swaps in .netrc credentials)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class AdminClient:
    """A ``requests.Session`` bound to the admin URL; every failure is an ``AdminError``."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.base_url = config.url
        self.session = requests.Session()
        if config.token is not None:
            self.session.auth = BearerAuth(config.token)
        else:
            self.session.auth = (config.username, config.password or "")
        self.session.verify = config.verify
        if config.verify is False:
            # The user asked for no verification; one warning per request would bury the output.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.session.headers["User-Agent"] = f"{PROG}/0.1"
        self._status: dict[str, Any] | None = None

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
        if is_pull_side(response):
            return AdminError(f"{self.base_url} is the pull port (Crane answers the registry protocol there, "
                              "read-only, without the admin API): use the admin URL with --url, "
                              "e.g. http://HOST:8080")
        if response.status_code == 401:
            if self.config.token is not None:
                return AdminError(LOGIN_EXPIRED)
            return AdminError(f"the server at {self.base_url} refused the credentials of user "
                              f"{self.config.username!r} (401 Unauthorized)")
        path = urlsplit(response.url).path if response.url else ""
        request = " ".join(part for part in (method, path) if part)
        message = error_message(response)
        retry = ""
        if response.status_code == 429 and response.headers.get("Retry-After") and "try again" not in message:
            retry = f"; try again in {response.headers['Retry-After']} seconds"
        return AdminError(f"{message} (HTTP {response.status_code} from {request}){retry}")

    def send_json(self, method: str, path: str, body: Any = None, expected: Iterable[int] = (200,)) -> Any:
        """``method`` ``path`` with a JSON body; the answer's JSON (``None`` for an empty answer, e.g. 204)."""
        response = self.request(method, path, expected=expected, json=body)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AdminError(f"{method} {path}: the server did not answer JSON") from None

    def status(self) -> dict[str, Any]:
        """The admin API's status call (fetched once): versions, workers, and the pull host."""
        if self._status is None:
            answer = self.get_json(f"{API}/status/")
            self._status = answer if isinstance(answer, dict) else {}
        return self._status

    def pull_host(self) -> str:
        """``host:port`` users pull from (Crane's), as the status call names it; else the admin URL's host."""
        return str(self.status().get("pull_host") or urlsplit(self.base_url).netloc)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise AdminError(f"GET {path}: the server did not answer JSON") from None


def is_pull_side(response: requests.Response) -> bool:
    """An answer from Crane rather than the admin app: registry-protocol headers on an admin API path,
    or a write refused as read-only on the registry protocol (the admin /v2/ accepts writes)."""
    path = urlsplit(response.url).path if response.url else ""
    if REGISTRY_API_HEADER not in response.headers:
        return False
    if not path.startswith("/v2/"):
        return True
    if response.status_code == 405 and response.request is not None and response.request.method not in ("GET", "HEAD"):
        return "read-only" in error_message(response)
    return False


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
