"""Run a WSGI app under gunicorn: a config file of defaults, then the process's settings on top.

Shared by ``pulp-registry api`` and ``crane``. Pure (gunicorn only), so Crane may import it.
"""
from __future__ import annotations

import logging
import os
import runpy
import ssl
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from pulp_registry.config import ConfigError


def config_file_settings(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The module-level names of a gunicorn config file."""
    return {key: value for key, value in runpy.run_path(str(path)).items() if not key.startswith("_")}


def tls_options(certificate: str, key: str) -> dict[str, Any]:
    """gunicorn's ``certfile``/``keyfile`` for the ``tls_certificate``/``tls_key`` settings ({} without TLS).

    Loaded once here, in the master, so an unreadable file or a key that does not
    match the certificate stops start-up with one line instead of failing in every worker.
    """
    if not certificate and not key:
        return {}
    if not certificate or not key:
        raise ConfigError("tls_certificate and tls_key: set both to serve TLS, or neither")
    for path in (certificate, key):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"tls_certificate/tls_key: cannot read {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certificate, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError(f"tls_certificate/tls_key: {certificate} and {key} are not a PEM certificate and its "
                          f"private key ({reason})") from None
    return {"certfile": certificate, "keyfile": key}


class ListeningAddress(logging.Filter):
    """gunicorn logs ``Listening at:  (PID)`` when each worker opens its own ``SO_REUSEPORT`` socket
    (the master holds none): name the configured address there instead."""

    def __init__(self, addresses: str) -> None:
        super().__init__()
        self.addresses = addresses

    def filter(self, record: logging.LogRecord) -> bool:
        if (isinstance(record.msg, str) and record.msg.startswith("Listening at: %s") and isinstance(record.args, tuple)
                and record.args and not record.args[0]):
            record.args = (self.addresses, *record.args[1:])
        return True


class RootLogger(GunicornLogger):
    """gunicorn's records go to the process's root handlers (``configure_logging``), so with ``log_format: json``
    they are JSON lines like every other record; used as gunicorn's ``logger_class``."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


def use_root_logging(options: dict[str, Any], log_format: str) -> None:
    """With ``log_format: json``, route gunicorn's own records through ``RootLogger``."""
    if log_format == "json":
        options["logger_class"] = f"{__name__}.RootLogger"


class GunicornServer(BaseApplication):
    """gunicorn with settings from ``config_files`` (in order), then ``options``; ``load_app`` builds the app."""

    def __init__(self, prog: str, load_app: Callable[[], Any], config_files: Sequence[Path],
                 options: Mapping[str, Any]) -> None:
        self.load_app = load_app
        self.config_files = list(config_files)
        self.options = dict(options)
        super().__init__(prog=prog)

    def load_config(self) -> None:
        known = self.cfg.settings
        for path in self.config_files:
            for key, value in config_file_settings(path).items():
                if key in known:
                    self.cfg.set(key, value)
        for key, value in self.options.items():
            self.cfg.set(key, value)
        scheme = "https" if self.cfg.certfile else "http"
        error_log = logging.getLogger("gunicorn.error")
        for old in [f for f in error_log.filters if isinstance(f, ListeningAddress)]:
            error_log.removeFilter(old)
        error_log.addFilter(ListeningAddress(",".join(f"{scheme}://{bind}" for bind in self.cfg.bind)))

    def load(self) -> Any:
        return self.load_app()
