"""``pulp-registry worker``: a Celery worker process on the admin side's settings."""
from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup

from pulp_registry import task_runner
from pulp_registry.worker_heartbeats import Heartbeat
from pulp_registry.services import Services
from workers import context

log = logging.getLogger(__name__)


def run_worker(services: Services, celery_app: Celery, argv: list[str]) -> None:
    """Set the worker's services, clean up after dead workers, then run ``celery worker`` with ``argv``.

    Tasks a previous run of this node name left ``running`` end as error (the
    node name is known once Celery parsed ``--hostname``, so that happens in
    ``celeryd_after_setup``, before the first message is taken).
    """
    context.set_services(services)
    task_runner.reap_expired_tasks(services.db)
    heartbeats: list[Heartbeat] = []

    def reap_previous_run(sender: str, **_: Any) -> None:
        task_runner.reap_dead_worker_tasks(services.db, sender)
        heartbeats.append(Heartbeat(services.db, sender).start())

    celeryd_after_setup.connect(reap_previous_run, weak=False, dispatch_uid="pulp_registry.reap_previous_run")
    try:
        celery_app.worker_main(["worker", f"--loglevel={services.settings.log_level.upper()}", *argv])
    finally:
        for heartbeat in heartbeats:
            heartbeat.stop()
