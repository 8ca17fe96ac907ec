"""What a process of the admin side holds: settings, database, storage, Celery app.

Built once by an entry point (``pulp-registry api|worker|dev``, or a test
fixture) and passed down; the Flask app keeps it in ``app.extensions``, the
workers in ``workers.context``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulp_registry.config import Settings
from pulp_registry.db import Collections, connect
from pulp_registry.storage import ContentStorage, open_storage


@dataclass
class Services:
    settings: Settings
    db: Collections
    storage: ContentStorage
    #: The Celery app tasks are sent through (``workers.app.create_celery_app``).
    celery: Any = None


def build_services(settings: Settings, mongo_client: Any = None) -> Services:
    from pulp_registry.roles import ensure_builtin_roles

    db = connect(settings, mongo_client)
    ensure_builtin_roles(db)
    return Services(settings=settings, db=db, storage=open_storage(settings))


def current_services() -> Services:
    """The services of the Flask app handling this request (blueprints take them from here, not from app.py)."""
    from flask import current_app

    return current_app.extensions["registry_services"]
