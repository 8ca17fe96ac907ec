"""Typed settings built once from a YAML file and the environment.

Every process (admin API, worker, dev) builds one ``Settings`` at start-up and
passes it down; no other module reads ``os.environ``. Crane reuses
``load_settings`` with its own small dataclass. This module is pure (YAML and
dataclasses only) so Crane may import it.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

import yaml

from pulp_registry.webhook_settings import validate_webhooks

T = TypeVar("T")
log = logging.getLogger("pulp_registry.config")

#: Variables with a settings prefix that are read elsewhere, so never reported as unknown settings.
NOT_SETTINGS = ("PULP_REGISTRY_CONFIG", "PULP_REGISTRY_ADMIN_PASSWORD", "CRANE_CONFIG")


class ConfigError(ValueError):
    """A wrong key or value in the configuration; the message names it."""


LDAP_URL_SCHEMES = ("ldap://", "ldaps://")
#: Brokers Celery reaches across processes; ``memory://`` only lives inside one (``pulp-registry dev``).
BROKER_URL_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "memory://")


def host_port_problem(value: str, port_required: bool = True) -> str | None:
    """Why ``value`` is not ``HOST:PORT`` (``[IPv6]:PORT``; the port optional unless required), or None."""
    if "://" in value:
        return "has a scheme: drop it (" + value.split("://", 1)[0] + "://)"
    host, port = value, ""
    if value.startswith("["):
        host, _, rest = value.partition("]")
        host += "]"
        if not rest:
            port = ""
        elif rest.startswith(":"):
            port = rest[1:]
        else:
            return "is not HOST:PORT"
    elif ":" in value:
        host, _, port = value.rpartition(":")
    if not host or host == "[]" or any(char.isspace() or char in "/?#@" for char in host) or \
            (":" in host and not host.startswith("[")):
        return "has no valid host"
    if (port or port_required) and not (port.isdigit() and 0 < int(port) < 65536):
        return "needs a port between 1 and 65535" if port_required else "has a port that is not 1-65535"
    return None


@dataclasses.dataclass(frozen=True)
class LdapSettings:
    """The ``ldap:`` section: how logins are checked against a directory (ldap3). Off while ``url`` is empty."""

    #: ``ldap://host:389`` or ``ldaps://host:636``; empty: no directory, local users only.
    url: str = ""
    #: Upgrade an ``ldap://`` connection with StartTLS before binding.
    start_tls: bool = False
    #: CA certificates (PEM) that sign the directory's certificate; empty: the system's.
    ca_file: str = ""
    #: Service account that searches users and groups; empty: anonymous search.
    bind_dn: str = ""
    bind_password: str = dataclasses.field(default="", repr=False)
    #: Where users are searched, and the filter that finds one (``{login}`` is replaced, RFC 4515-escaped).
    user_search_base: str = ""
    user_filter: str = "(uid={login})"
    #: Attribute holding the user's full name, shown in listings.
    name_attribute: str = "cn"
    #: Where groups are searched, and the filter that finds a user's groups (``{dn}``, ``{login}`` replaced).
    group_search_base: str = ""
    group_filter: str = "(member={dn})"
    #: LDAP group (common name or DN) -> roles its members hold.
    group_roles: dict = dataclasses.field(default_factory=dict)
    #: Roles every directory user holds.
    default_roles: list = dataclasses.field(default_factory=list)
    #: Resolve groups inside groups (a member of ``devs`` inside ``staff`` holds ``staff``'s roles).
    nested_groups: bool = False
    #: Seconds to wait for the directory before a login fails as unavailable.
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(LDAP_URL_SCHEMES):
            raise ConfigError(f"ldap.url: {self.url!r} is not an ldap:// or ldaps:// URL")
        if self.url and not self.user_search_base:
            raise ConfigError("ldap.user_search_base: required when ldap.url is set")
        if "{login}" not in self.user_filter:
            raise ConfigError(f"ldap.user_filter: {self.user_filter!r} must contain {{login}}")
        if self.start_tls and self.url.startswith("ldaps://"):
            raise ConfigError("ldap.start_tls: not with an ldaps:// URL (it is TLS already)")
        if self.bind_password and not self.bind_dn:
            raise ConfigError("ldap.bind_password: given without ldap.bind_dn")
        if self.bind_dn and not self.bind_password:
            raise ConfigError("ldap.bind_password: required with ldap.bind_dn (leave both empty to search anonymously)")
        if not 0 < self.timeout <= 300:
            raise ConfigError(f"ldap.timeout: must be between 0 and 300 seconds, got {self.timeout}")
        for group, roles in self.group_roles.items():
            if not isinstance(group, str) or not group:
                raise ConfigError(f"ldap.group_roles: group {group!r} must be a non-empty string")
            names = [roles] if isinstance(roles, str) else roles
            if not isinstance(names, list) or not all(isinstance(role, str) and role for role in names):
                raise ConfigError(f"ldap.group_roles: {group}: expected a role name or a list of them")
            self.group_roles[group] = list(names)
        if not all(isinstance(role, str) and role for role in self.default_roles):
            raise ConfigError(f"ldap.default_roles: expected a list of role names, got {self.default_roles!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclasses.dataclass(frozen=True)
class Settings:
    """The admin side's settings. Every key is documented in the README."""

    #: Root for everything the registry writes; other paths default below it.
    data_dir: str = "/var/lib/pulp-registry"
    #: Content storage (blobs and manifests); default ``<data_dir>/content``.
    storage_path: str = ""
    #: ``filesystem`` (``storage_path``) or ``s3`` (the ``s3_*`` keys): content, and the published
    #: configs and layers, live in the bucket; ``published_dir`` keeps the metadata and manifests.
    storage_driver: str = "filesystem"
    #: ``s3``: the bucket, a key prefix (``registry/``), the endpoint (empty: AWS), region and keys
    #: (empty: boto3's own chain -- environment, ~/.aws, instance role).
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = dataclasses.field(default="", repr=False)
    #: The tree Crane serves; default ``<data_dir>/published``.
    published_dir: str = ""
    #: ``mongodb://...`` for MongoDB, ``mongomock://`` for an in-memory database.
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_database: str = "pulp_registry"
    #: Celery broker: ``redis://...``, ``amqp://...`` or ``memory://``.
    broker_url: str = "redis://127.0.0.1:6379/0"
    #: ``host:port`` users pull from (Crane), printed by ``registry-admin push``.
    pull_host: str = "127.0.0.1:5000"
    #: Where ``pulp-registry api`` listens.
    api_bind: str = "127.0.0.1:8080"
    api_workers: int = 2
    #: Largest manifest accepted on push, in bytes.
    max_manifest_size: int = 4 * 1024 * 1024
    #: Seconds a task's lease (and its repository locks) survives without a heartbeat from its worker.
    task_lock_timeout: int = 300
    #: Seconds a waiting task may go unclaimed (its message lost?) before the reaper sends it again.
    task_dispatch_timeout: int = 60
    #: Seconds a task may run, per type (``default`` for the others); past it, it stops as error.
    task_time_limits: str = "publish=3600,delete_repository=3600,copy=3600,orphan_cleanup=21600,sync=21600,default=3600"
    #: Days finished, failed and canceled tasks are kept; 0: for ever.
    task_retention_days: int = 30
    log_level: str = "INFO"
    #: ``text`` (one readable line per record) or ``json`` (one JSON object per line, per request too).
    log_format: str = "text"
    #: bcrypt work factor of new password hashes (and of the check an unknown login costs).
    bcrypt_rounds: int = 12
    #: Seconds a verified password is remembered (salted, in memory) so a push is not a bcrypt or LDAP
    #: bind per request; 0: check every time.
    credential_cache_seconds: int = 60
    #: Failed logins allowed per login name, and per client address, within ``login_failure_window``.
    login_failure_limit: int = 10
    login_failure_window: int = 300
    #: Seconds an API token from ``registry-admin login`` stays valid.
    api_token_lifetime: int = 12 * 3600
    #: Anyone may pull unprotected repositories without logging in (Crane and the admin ``/v2/``).
    anonymous_pull: bool = True
    #: Registry tokens (``GET /token``): the signing key (PEM, made at first start with 0600 permissions
    #: when missing), its public key, the ``iss`` and ``aud`` claims, and their lifetime in seconds.
    token_private_key: str = ""
    token_public_key: str = ""
    token_issuer: str = "pulp-registry"
    token_service: str = "pulp-registry"
    token_lifetime: int = 300
    #: Public URL of the admin side's ``/token`` (the ``realm`` of challenges); empty: this request's host.
    token_realm: str = ""
    #: Largest blob accepted on push, in bytes; 0: no limit.
    max_blob_size: int = 0
    #: Largest request body of the admin REST API (``/pulp/api/v2/``, not pushes), in bytes.
    max_request_body: int = 1024 * 1024
    #: Bytes of blobs the content storage may hold in total (the sum of the blob records); 0: no quota.
    storage_quota: int = 0
    #: Seconds an unreferenced blob or manifest is kept by orphan clean-up (a push may be about to use it).
    orphan_grace_period: int = 3600
    #: Public base URLs (``https://host[:port]``) of the admin side and of Crane, as clients reach them
    #: through proxies; empty: the request's own host (admin) and ``http://<pull_host>`` (Crane).
    api_public_url: str = ""
    crane_public_url: str = ""
    #: Number of proxies in front of the admin side whose ``X-Forwarded-*`` headers are trusted.
    trusted_proxies: int = 0
    #: CA certificate (PEM) served at ``/ca.crt`` without login; empty: ``<data_dir>/certs/ca.crt`` if it exists.
    ca_certificate: str = ""
    #: Certificate chain and key (PEM) the admin side's gunicorn serves TLS with; empty: plain HTTP.
    tls_certificate: str = ""
    tls_key: str = dataclasses.field(default="", repr=False)
    #: Prometheus metrics at ``/metrics`` (api) and from each worker.
    metrics: bool = True
    #: ``HOST:PORT`` where each ``pulp-registry worker`` serves its metrics (``/metrics``); empty: not served.
    worker_metrics_bind: str = "127.0.0.1:9808"
    #: Webhook endpoints: a list of ``{url, secret, events, timeout}`` mappings (see the README).
    webhooks: list = dataclasses.field(default_factory=list)
    ldap: LdapSettings = dataclasses.field(default_factory=LdapSettings)

    def __post_init__(self) -> None:
        if not self.token_private_key:
            object.__setattr__(self, "token_private_key", str(Path(self.data_dir) / "keys" / "token-signing.pem"))
        if not self.token_public_key:
            object.__setattr__(self, "token_public_key", str(Path(self.data_dir) / "keys" / "token-public.pem"))
        if not self.storage_path:
            object.__setattr__(self, "storage_path", str(Path(self.data_dir) / "content"))
        if not self.published_dir:
            object.__setattr__(self, "published_dir", str(Path(self.data_dir) / "published"))
        if self.storage_driver not in ("filesystem", "s3"):
            raise ConfigError(f"storage_driver: unknown driver {self.storage_driver!r} (known: filesystem, s3)")
        if self.storage_driver == "s3" and not self.s3_bucket:
            raise ConfigError("s3_bucket: required when storage_driver is s3")
        if not self.mongo_url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
            scheme = self.mongo_url.partition("://")[0] + "://" if "://" in self.mongo_url else "(none)"
            raise ConfigError(f"mongo_url: scheme {scheme} is not mongodb:// or mongomock://")   # no password shown
        for key in ("max_manifest_size", "task_lock_timeout", "task_dispatch_timeout", "api_workers", "login_failure_limit",
                    "login_failure_window", "api_token_lifetime", "token_lifetime"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be a positive number, got {getattr(self, key)}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level: {self.log_level!r} is not a logging level")
        if not 4 <= self.bcrypt_rounds <= 16:
            raise ConfigError(f"bcrypt_rounds: must be between 4 and 16, got {self.bcrypt_rounds}")
        for key in ("max_blob_size", "storage_quota", "task_retention_days", "orphan_grace_period"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be 0 (off) or a number of bytes, got {getattr(self, key)}")
        if self.max_request_body <= 0:
            raise ConfigError(f"max_request_body: must be a positive number of bytes, got {self.max_request_body}")
        if self.credential_cache_seconds < 0:
            raise ConfigError(f"credential_cache_seconds: must be 0 or more, got {self.credential_cache_seconds}")
        if self.token_realm and not self.token_realm.startswith(("http://", "https://")):
            raise ConfigError(f"token_realm: {self.token_realm!r} must be an http:// or https:// URL")
        if not self.token_issuer or not self.token_service:
            raise ConfigError("token_issuer and token_service: must not be empty")
        for key in ("api_public_url", "crane_public_url"):
            if getattr(self, key):
                object.__setattr__(self, key, public_base_url(key, getattr(self, key)))
        if self.trusted_proxies < 0:
            raise ConfigError(f"trusted_proxies: must be 0 or more, got {self.trusted_proxies}")
        check_tls_pair(self.tls_certificate, self.tls_key)
        self.task_time_limit("default")  # refuses a malformed task_time_limits at start-up
        try:  # each endpoint checked and completed with its defaults (pulp_registry.webhook_settings)
            object.__setattr__(self, "webhooks", validate_webhooks(self.webhooks))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if not self.broker_url.startswith(BROKER_URL_SCHEMES):
            # Only the scheme is shown: the rest may hold a password.
            scheme = self.broker_url.partition("://")[0] + "://" if "://" in self.broker_url else "(none)"
            raise ConfigError(f"broker_url: scheme {scheme} is not a broker's; use redis://, rediss://, amqp:// or "
                              "amqps:// (memory:// only for `pulp-registry dev`)")
        if problem := host_port_problem(self.api_bind):
            raise ConfigError(f"api_bind: {self.api_bind!r} {problem}; expected HOST:PORT, e.g. 0.0.0.0:8080")
        if problem := host_port_problem(self.pull_host, port_required=False):
            raise ConfigError(f"pull_host: {self.pull_host!r} {problem}; expected host[:port] "
                              "as users type it in `docker pull host:port/name`")

    def task_time_limit(self, task_type: str) -> int:
        """Seconds a task of ``task_type`` may run (``task_time_limits``: ``type=seconds,...``)."""
        limits: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in self.task_time_limits.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not value.strip().isdigit() or int(value) <= 0:
                raise ConfigError(f"task_time_limits: {item!r} is not TYPE=SECONDS with SECONDS > 0")
            limits[key.strip()] = int(value)
        return limits.get(task_type, limits.get("default", 3600))


def public_base_url(key: str, url: str) -> str:
    """``http(s)://host[:port]`` without path, query or fragment (a trailing ``/`` is dropped)."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if (parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.username
            or parts.password or parts.path not in ("", "/") or parts.query or parts.fragment or "?" in url):
        raise ConfigError(f"{key}: {url!r} is not http(s)://HOST[:PORT] (no path, query or credentials)")
    return f"{parts.scheme}://{parts.netloc}"


def check_tls_pair(certificate: str, key: str) -> None:
    """TLS needs both files; one without the other is a mistake, not plain HTTP."""
    if bool(certificate) != bool(key):
        given, missing = ("tls_certificate", "tls_key") if certificate else ("tls_key", "tls_certificate")
        raise ConfigError(f"{missing}: required with {given} (set both to serve TLS, or neither)")


#: Settings whose values are secrets: never printed, logged or answered (``list[].key``: that key of each item).
SECRET_KEYS = ("ldap.bind_password", "webhooks[].secret", "s3_secret_access_key")
#: Settings holding URLs whose passwords are hidden when printed (``list[].key`` as above).
URL_KEYS = ("mongo_url", "broker_url", "webhooks[].url")


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Turn a YAML or environment value into the field's type, or say which key is wrong."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind in (dict, list):
        if isinstance(value, str):  # from the environment: YAML (or JSON) text; a list may be comma-separated
            try:
                parsed = yaml.safe_load(value) if value.strip() else kind()
            except yaml.YAMLError:
                parsed = None
            if kind is list and isinstance(parsed, str):
                parsed = [item.strip() for item in parsed.split(",") if item.strip()]
            value = parsed
        if isinstance(value, kind):
            return value
    elif dataclasses.is_dataclass(kind):
        if isinstance(value, Mapping):
            return _build_section(key, kind, value)
    raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")


def _build_section(key: str, cls: type[T], values: Mapping[str, Any]) -> T:
    """A nested section (``ldap:``): its keys checked and coerced like the top level's, named ``key.sub``."""
    types = get_type_hints(cls)
    coerced: dict[str, Any] = {}
    for sub, value in values.items():
        if sub not in types:
            raise ConfigError(f"{key}.{sub}: unknown setting (known: {', '.join(sorted(types))})")
        coerced[sub] = _coerce(f"{key}.{sub}", value, _plain(types[sub]))
    return cls(**coerced)


def _plain(kind: Any) -> Any:
    """``dict[str, list[str]]`` -> ``dict``: values are checked by the dataclass itself."""
    return get_origin(kind) or kind if get_args(kind) else kind


def unknown_variables(cls: type, environ: Mapping[str, str], env_prefix: str) -> list[str]:
    """A message per ``<env_prefix>*`` variable that is no setting of ``cls``, naming the closest one."""
    known: list[str] = []
    for key, kind in get_type_hints(cls).items():
        known.append(f"{env_prefix}{key.upper()}")
        if dataclasses.is_dataclass(kind):
            known.extend(f"{env_prefix}{key.upper()}_{sub.upper()}" for sub in get_type_hints(kind))
    messages = []
    for name in sorted(environ):
        if name.startswith(env_prefix) and name not in known and name not in NOT_SETTINGS:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            messages.append(f"{name} is not a setting{hint}")
    return messages


def load_settings(
    cls: type[T],
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    env_prefix: str,
    overrides: Mapping[str, Any] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> T:
    """Build ``cls`` from a YAML file, then ``<env_prefix><KEY>`` variables, then ``overrides``.

    Later sources win. Unknown keys and wrong types raise ``ConfigError`` naming
    the key, so a typo stops start-up instead of being silently ignored. An
    unknown ``<env_prefix>*`` variable cannot be refused (the environment holds
    other programs' variables too), so it is reported to ``on_warning`` (default:
    a logged warning) with the closest setting's name.
    """
    for message in unknown_variables(cls, environ, env_prefix):
        (on_warning or log.warning)(message)
    types = get_type_hints(cls)
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"config file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping of keys to values")
        for key, value in loaded.items():
            if key not in types:
                raise ConfigError(f"{key}: unknown setting in {path} (known: {', '.join(sorted(types))})")
            if dataclasses.is_dataclass(types[key]):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{key}: expected a mapping of its settings, got {value!r}")
                sections[key] = dict(value)  # built once every source is read: a variable may complete it
            else:
                values[key] = _coerce(key, value, types[key])
    for key, kind in types.items():
        env_name = f"{env_prefix}{key.upper()}"
        if dataclasses.is_dataclass(kind):
            # A section's keys come one variable each: PULP_REGISTRY_LDAP_URL, PULP_REGISTRY_LDAP_BIND_DN, ...
            for sub in get_type_hints(kind):
                if f"{env_name}_{sub.upper()}" in environ:
                    sections.setdefault(key, {})[sub] = environ[f"{env_name}_{sub.upper()}"]
        elif env_name in environ:
            values[key] = _coerce(env_name, environ[env_name], kind)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in types:
            raise ConfigError(f"{key}: unknown setting")
        values[key] = _coerce(key, value, types[key])
    for key, section in sections.items():
        if key not in values:
            values[key] = _build_section(key, types[key], section)
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from None


def load_admin_settings(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None,
                        on_warning: Callable[[str], None] | None = None) -> Settings:
    """Settings for the admin side: ``PULP_REGISTRY_CONFIG`` file, ``PULP_REGISTRY_*`` variables."""
    return load_settings(Settings, environ.get("PULP_REGISTRY_CONFIG"), environ, "PULP_REGISTRY_", overrides,
                         on_warning)
