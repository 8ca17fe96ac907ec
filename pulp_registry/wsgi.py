"""The admin API as a WSGI app for gunicorn: ``pulp-registry api`` or ``gunicorn 'pulp_registry.wsgi:create()'``.

Services (MongoDB client, Celery app) are built by ``create`` inside each
gunicorn worker, after the fork: gunicorn loads the app in the worker unless
``preload_app`` is on, and ``gunicorn.conf.py`` keeps it off.
"""
from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from pulp_registry.config import Settings

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


def gunicorn_defaults() -> dict[str, Any]:
    """The settings in ``gunicorn.conf.py`` (module-level names that are gunicorn settings)."""
    return {key: value for key, value in runpy.run_path(str(GUNICORN_CONF)).items() if not key.startswith("_")}


class AdminApiServer(BaseApplication):
    """gunicorn running the admin API with ``gunicorn.conf.py`` defaults, ``api_bind`` and ``api_workers``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__(prog="pulp-registry api")

    def load_config(self) -> None:
        known = self.cfg.settings
        for key, value in gunicorn_defaults().items():
            if key in known:
                self.cfg.set(key, value)
        self.cfg.set("bind", [self.settings.api_bind])
        self.cfg.set("workers", self.settings.api_workers)
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("proc_name", "pulp-registry-api")

    def load(self) -> Flask:
        # Runs in each worker after the fork (preload_app is off).
        return create(self.settings)
