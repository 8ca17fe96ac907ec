"""``pulp-registry worker``: a Celery worker process on the admin side's settings."""
from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup

from pulp_registry import task_runner
from pulp_registry.services import Services
from pulp_registry.task_reaper import Reaper
from pulp_registry.worker_heartbeats import Heartbeat
from workers import context

log = logging.getLogger(__name__)


def run_worker(services: Services, celery_app: Celery, argv: list[str]) -> None:
    """Set the worker's services, then run ``celery worker`` with ``argv``.

    Once Celery knows its node name (``celeryd_after_setup``), this process
    records its heartbeat under a unique worker id and starts the task reaper,
    which ends the tasks of dead workers and sends again lost messages. Tasks
    this node's previous run left behind are not touched here: only their
    expired leases prove that run is gone.
    """
    context.set_services(services)
    background: list[Heartbeat | Reaper] = []

    def start_background(sender: str, **_: Any) -> None:
        background.append(Heartbeat(services.db, task_runner.worker_identity(sender)).start())
        background.append(Reaper(services).start())

    celeryd_after_setup.connect(start_background, weak=False, dispatch_uid="pulp_registry.worker_background")
    try:
        celery_app.worker_main(["worker", f"--loglevel={services.settings.log_level.upper()}", *argv])
    finally:
        for thread in background:
            thread.stop()
