"""``pulp-registry worker``: a Celery worker process on the admin side's settings."""
from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, worker_process_shutdown

from pulp_registry import task_runner
from pulp_registry.config import Settings
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
    metrics_server = _serve_metrics(services.settings)
    try:
        celery_app.worker_main([*quiet_options(services.settings.log_format), "worker",
                                f"--loglevel={services.settings.log_level.upper()}", *argv])
    finally:
        for thread in background:
            thread.stop()
        if metrics_server is not None:
            metrics_server.shutdown()


def quiet_options(log_format: str) -> list[str]:
    """``celery`` options: no colour codes unless stderr is a terminal; no banner (not a JSON line) with
    ``log_format: json``."""
    options = [] if sys.stderr.isatty() else ["--no-color"]
    if log_format == "json":
        _say_in_json()
        options.append("--quiet")
    return options


def _say_in_json() -> None:
    """Celery writes a few lines straight to the terminal from signal handlers ("worker: Warm shutdown");
    make each a JSON record, written with ``os.write`` as Celery does (no lock inside a signal handler)."""
    from celery.apps import worker as celery_worker

    from pulp_registry.logging_setup import JsonFormatter

    def say(message: str, stream: Any = sys.__stderr__) -> None:
        record = logging.LogRecord("celery.apps.worker", logging.INFO, __file__, 0, message, None, None)
        try:
            os.write(stream.fileno(), (JsonFormatter().format(record) + "\n").encode())
        except (OSError, ValueError, AttributeError):
            pass

    celery_worker.safe_say = say


def _serve_metrics(settings: Settings) -> Any:
    """This worker's ``/metrics`` on ``worker_metrics_bind`` (task durations, summed over Celery's pool processes)."""
    if not settings.metrics or not settings.worker_metrics_bind:
        return None
    from pulp_registry.metrics import start_multiprocess
    from pulp_registry.task_metrics import serve_worker_metrics

    directory = start_multiprocess("pulp-registry-worker")   # before the pool forks: children write here too
    worker_process_shutdown.connect(_forget_pool_process, weak=False, dispatch_uid="pulp_registry.worker_metrics")
    atexit.register(shutil.rmtree, directory, True)
    return serve_worker_metrics(settings.worker_metrics_bind)


def _forget_pool_process(pid: int | None = None, **_: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid or os.getpid())
