"""A real Celery worker in a thread of this process, for ``pulp-registry dev`` and integration tests.

It consumes from the Celery app's broker (``memory://`` in ``dev``, a real
``redis://`` in the integration tests) with a threads pool, exactly as
``pulp-registry worker`` would, only without a process of its own. Modelled on
``celery.contrib.testing.worker`` but without its ping task (we keep no result
backend): readiness is the consumer's own "ready" callback.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Iterator

from celery import Celery
from celery.app import trace
from celery.utils.nodenames import anon_nodename
from celery.worker import WorkController
from celery.worker import state as worker_state

from pulp_registry import task_runner
from pulp_registry.services import Services
from pulp_registry.task_reaper import Reaper
from pulp_registry.worker_heartbeats import Heartbeat
from workers import context

log = logging.getLogger(__name__)


class EmbeddedWorkController(WorkController):
    """A worker that tells another thread when its consumer is ready."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.ready = threading.Event()
        super().__init__(*args, **kwargs)

    def on_consumer_ready(self, consumer: Any) -> None:
        self.ready.set()


@contextlib.contextmanager
def start_embedded_worker(celery_app: Celery, services: Services, concurrency: int = 2, *,
                          hostname: str | None = None, loglevel: str = "INFO",
                          ready_timeout: float = 30.0, shutdown_timeout: float = 60.0,
                          ) -> Iterator[EmbeddedWorkController]:
    """Run a Celery worker (threads pool) on ``celery_app`` in a daemon thread until the block exits.

    Sets ``workers.context`` services, starts the worker and returns once it
    consumes; meanwhile a heartbeat and the task reaper run (``task_reaper``). On exit it
    stops taking messages and waits for running tasks (a warm shutdown) for up
    to ``shutdown_timeout`` seconds.
    """
    context.set_services(services)
    celery_app.loader.import_default_modules()  # workers.tasks, so its shared tasks bind to this app
    hostname = hostname or anon_nodename(prefix="embedded")
    # As `celery worker` does: tasks then see this node name in request.hostname (the task's worker).
    trace.setup_worker_optimizations(celery_app, hostname)

    worker = EmbeddedWorkController(
        app=celery_app,
        hostname=hostname,
        concurrency=concurrency,
        pool="threads",
        loglevel=loglevel,
        ready_callback=None,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    thread = threading.Thread(target=worker.start, name=f"celery-worker-{worker.hostname}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + ready_timeout
        while not worker.ready.wait(0.1):
            if not thread.is_alive():
                raise RuntimeError("the embedded Celery worker stopped while starting")
            if time.monotonic() > deadline:
                from pulp_registry.cli import redact_url   # the broker's password stays out of the message

                raise RuntimeError(f"the embedded Celery worker was not consuming after {ready_timeout:.0f} s "
                                   f"(is the broker {redact_url(celery_app.conf.broker_url)!r} reachable?)")
        log.info("embedded Celery worker %s ready (%d threads)", worker.hostname, concurrency)
        heartbeat = Heartbeat(services.db, task_runner.worker_identity(worker.hostname)).start()
        reaper = Reaper(services).start()
        try:
            yield worker
        finally:
            reaper.stop()
            heartbeat.stop()
    finally:
        _stop(worker, thread, shutdown_timeout)
        trace.reset_worker_optimizations(celery_app)


def _stop(worker: EmbeddedWorkController, thread: threading.Thread, timeout: float) -> None:
    """Warm shutdown: the consumer loop sees ``should_stop`` and the pool drains running tasks."""
    worker_state.should_stop = 0
    try:
        thread.join(timeout)
        if thread.is_alive():
            log.warning("embedded Celery worker %s did not stop within %.0f s; terminating",
                        worker.hostname, timeout)
            worker.terminate()
            thread.join(5)
    finally:
        worker_state.should_stop = None
