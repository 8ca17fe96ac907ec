"""Typed settings built once from a YAML file and the environment.

Every process (admin API, worker, dev) builds one ``Settings`` at start-up and
passes it down; no other module reads ``os.environ``. Crane reuses
``load_settings`` with its own small dataclass. This module is pure (YAML and
dataclasses only) so Crane may import it.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, TypeVar, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A wrong key or value in the configuration; the message names it."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """The admin side's settings. Every key is documented in the README."""

    #: Root for everything the registry writes; other paths default below it.
    data_dir: str = "/var/lib/pulp-registry"
    #: Content storage (blobs and manifests); default ``<data_dir>/content``.
    storage_path: str = ""
    #: Storage driver; only ``filesystem`` for now.
    storage_driver: str = "filesystem"
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
    #: Seconds a repository lock survives without a heartbeat from its worker.
    task_lock_timeout: int = 300
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.storage_path:
            object.__setattr__(self, "storage_path", str(Path(self.data_dir) / "content"))
        if not self.published_dir:
            object.__setattr__(self, "published_dir", str(Path(self.data_dir) / "published"))
        if self.storage_driver != "filesystem":
            raise ConfigError(f"storage_driver: unknown driver {self.storage_driver!r} (known: filesystem)")
        if not self.mongo_url.startswith(("mongodb://", "mongodb+srv://", "mongomock://")):
            raise ConfigError(f"mongo_url: {self.mongo_url!r} is not a mongodb:// or mongomock:// URL")
        for key in ("max_manifest_size", "task_lock_timeout", "api_workers"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be a positive number, got {getattr(self, key)}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level: {self.log_level!r} is not a logging level")


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
    raise ConfigError(f"{key}: expected {kind.__name__}, got {value!r}")


def load_settings(
    cls: type[T],
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    env_prefix: str,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from a YAML file, then ``<env_prefix><KEY>`` variables, then ``overrides``.

    Later sources win. Unknown keys and wrong types raise ``ConfigError`` naming
    the key, so a typo stops start-up instead of being silently ignored.
    """
    types = get_type_hints(cls)
    values: dict[str, Any] = {}
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
            values[key] = _coerce(key, value, types[key])
    for key, kind in types.items():
        env_name = f"{env_prefix}{key.upper()}"
        if env_name in environ:
            values[key] = _coerce(env_name, environ[env_name], kind)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in types:
            raise ConfigError(f"{key}: unknown setting")
        values[key] = _coerce(key, value, types[key])
    try:
        return cls(**values)
    except TypeError as exc:  # pragma: no cover - guarded by the key checks above
        raise ConfigError(str(exc)) from None


def load_admin_settings(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> Settings:
    """Settings for the admin side: ``PULP_REGISTRY_CONFIG`` file, ``PULP_REGISTRY_*`` variables."""
    return load_settings(Settings, environ.get("PULP_REGISTRY_CONFIG"), environ, "PULP_REGISTRY_", overrides)
