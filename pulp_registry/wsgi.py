"""The admin API as a WSGI app for gunicorn: ``pulp-registry api`` or ``gunicorn 'pulp_registry.wsgi:create()'``.

Services (MongoDB client, Celery app) are built by ``create`` inside each
gunicorn worker, after the fork: gunicorn loads the app in the worker unless
``preload_app`` is on, and ``gunicorn.conf.py`` keeps it off.
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from pulp_registry.config import Settings
from pulp_registry.gunicorn_server import GunicornServer

GUNICORN_CONF = Path(__file__).with_name("gunicorn.conf.py")


def create(settings: Settings | None = None) -> Flask:
    """The admin API with this process's own services; settings from the environment when not given."""
    from pulp_registry.app import create_app
    from pulp_registry.cli import build_process_services, environment_settings, require_shared_backends
    from pulp_registry.logging_setup import configure_logging

    if settings is None:
        settings = environment_settings()
        require_shared_backends(settings, "api")
    configure_logging(settings.log_level)
    return create_app(build_process_services(settings))


def admin_api_server(settings: Settings) -> GunicornServer:
    """gunicorn running the admin API with ``gunicorn.conf.py`` defaults, ``api_bind`` and ``api_workers``.

    The app is loaded in each worker after the fork (``preload_app`` is off).
    """
    return GunicornServer("pulp-registry api", lambda: create(settings), [GUNICORN_CONF], {
        "bind": [settings.api_bind],
        "workers": settings.api_workers,
        "loglevel": settings.log_level.lower(),
        "proc_name": "pulp-registry-api",
    })
