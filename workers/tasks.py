"""Celery tasks: thin wrappers that hand the work to plain functions in ``pulp_registry``.

Each task is registered under the name in ``pulp_registry.tasks.TASK_NAMES``
with ``shared_task``, so it binds to whichever Celery app is current (the API,
the worker and the tests each build their own with
``workers.app.create_celery_app``). The task's state lives in its MongoDB
document; ``task_runner.run_task`` claims it, locks its repository and
records the outcome. A task whose repository is locked by another live task
stays ``waiting`` and is retried a second later.
"""
from __future__ import annotations

import logging
import socket
from typing import Any, Callable

from celery import shared_task

from pulp_registry import task_runner
from pulp_registry.task_runner import LockBusy
from workers import context

log = logging.getLogger(__name__)

#: Seconds before a task whose resources are busy is tried again.
RETRY_COUNTDOWN = 1


def _worker_name(task: Any) -> str:
    """The Celery node name (``celery@host``); eager runs are named after this process."""
    return task.request.hostname or f"eager@{socket.gethostname()}"


def _run(task: Any, task_id: str, work: Callable[[Any, task_runner.Progress], Any]) -> Any:
    services = context.get_services()
    try:
        return task_runner.run_task(services, task_id, lambda progress: work(services, progress),
                                    _worker_name(task))
    except LockBusy as busy:
        if task.request.is_eager:
            # Eager Celery (API tests) would retry inline and forever: leave the task waiting.
            log.warning("task %s left waiting: %s", task_id, busy)
            return None
        log.info("task %s waits: %s", task_id, busy)
        raise task.retry(countdown=RETRY_COUNTDOWN, max_retries=None)


@shared_task(bind=True, name="workers.tasks.publish")
def publish(self: Any, task_id: str, repo_id: str) -> Any:
    """Publish repository ``repo_id`` (``pulp_registry.publish.publish_repository``)."""
    from pulp_registry.publish import publish_repository

    return _run(self, task_id, lambda services, progress: publish_repository(services, repo_id, progress))


@shared_task(bind=True, name="workers.tasks.delete_repository")
def delete_repository(self: Any, task_id: str, repo_id: str) -> Any:
    """Delete repository ``repo_id`` and unpublish it (``pulp_registry.repositories.delete_repository``)."""
    from pulp_registry.repositories import delete_repository as delete

    return _run(self, task_id, lambda services, progress: delete(services, repo_id))
