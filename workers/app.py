"""The Celery app, configured from the same settings as the admin side."""
from __future__ import annotations

from typing import Any

from celery import Celery

from pulp_registry.config import Settings


def create_celery_app(settings: Settings, **overrides: Any) -> Celery:
    """A Celery app on ``settings.broker_url``; task state lives in MongoDB, not a result backend."""
    app = Celery("pulp_registry", broker=broker_url(settings.broker_url),
                 include=["workers.tasks", "workers.webhook_tasks"])
    app.conf.update(
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        task_acks_late=False,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.conf.update(overrides)
    # Register the shared tasks now: eager mode and a worker thread look them up in app.tasks.
    import workers.tasks  # noqa: F401
    import workers.webhook_tasks  # noqa: F401

    return app


def broker_url(url: str) -> str:
    """``memory://`` names no host, and kombu warns "No hostname was supplied" each time it copies the
    connection; the in-memory transport ignores the host, so name one."""
    return "memory://localhost/" if url == "memory://" else url
