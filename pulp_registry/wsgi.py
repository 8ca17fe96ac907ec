"""The admin API as a WSGI app for gunicorn: ``pulp-registry api`` or ``gunicorn 'pulp_registry.wsgi:create()'``.

Services (MongoDB client, Celery app) are built by ``create`` inside each
gunicorn worker, after the fork: gunicorn loads the app in the worker unless
``preload_app`` is on, and ``gunicorn.conf.py`` keeps it off.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from pulp_registry.config import Settings
from pulp_registry.gunicorn_server import GunicornServer, tls_options

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def create(settings: Settings | None = None) -> Flask:
    """The admin API with this process's own services; settings from the environment when not given."""
    from pulp_registry.app import create_app
    from pulp_registry.cli import build_process_services, environment_settings, require_shared_backends
    from pulp_registry.logging_setup import configure_logging

    if settings is None:
        settings = environment_settings()
        require_shared_backends(settings, "api")
    configure_logging(settings.log_level, settings.log_format)
    return create_app(build_process_services(settings))


def admin_api_server(settings: Settings, metrics_dir: str | None = None) -> GunicornServer:
    """gunicorn running the admin API with ``gunicorn.conf.py`` defaults, ``api_bind``, ``api_workers`` and TLS.

    The app is loaded in each worker after the fork (``preload_app`` is off). ``metrics_dir``: the
    multiprocess directory ``pulp-registry api`` made (``pulp_registry.metrics.start_multiprocess``).
    """
    from pulp_registry.gunicorn_server import use_root_logging
    from pulp_registry.metrics import gunicorn_hooks

    options: dict[str, Any] = {
        "bind": [settings.api_bind],
        "workers": settings.api_workers,
        "loglevel": settings.log_level.lower(),
        "proc_name": "pulp-registry-api",
        **tls_options(settings.tls_certificate, settings.tls_key),
        **(gunicorn_hooks(metrics_dir) if metrics_dir else {}),
    }
    if settings.log_format == "json":
        options["accesslog"] = None   # the request log (``pulp_registry.requests``) has a line per request
        use_root_logging(options, settings.log_format)
    return GunicornServer("pulp-registry api", lambda: create(settings), [GUNICORN_CONF], options)
