"""Celery tasks: thin wrappers that hand the work to plain functions in ``pulp_registry``.

Each task is registered under the name in ``pulp_registry.tasks.TASK_NAMES``
with ``shared_task``, so it binds to whichever Celery app is current (the API,
the worker and the tests each build their own with
``workers.app.create_celery_app``). The task's state lives in its MongoDB
document; ``task_runner.run_task`` claims it, locks its repository and
records the outcome. A task queued behind another on the same repository is
not retried: it stays ``waiting`` and is sent again when that one ends.
"""
from __future__ import annotations

from typing import Any, Callable

from celery import shared_task

from pulp_registry import task_runner
from workers import context


def _worker_name(task: Any) -> str:
    """This process's unique worker id, after the Celery node name (``celery@host``) when there is one."""
    return task_runner.worker_identity(None if task.request.is_eager else task.request.hostname)


def _run(task: Any, task_id: str, work: Callable[[Any, task_runner.Progress], Any]) -> Any:
    services = context.get_services()
    return task_runner.run_task(services, task_id, lambda progress: work(services, progress), _worker_name(task))


@shared_task(bind=True, name="workers.tasks.publish")
def publish(self: Any, task_id: str, repo_id: str) -> Any:
    """Publish repository ``repo_id`` (``pulp_registry.publish.publish_repository``)."""
    from pulp_registry.publish import publish_repository

    return _run(self, task_id, lambda services, progress: publish_repository(services, repo_id, progress))


@shared_task(bind=True, name="workers.tasks.delete_repository")
def delete_repository(self: Any, task_id: str, repo_id: str) -> Any:
    """Delete repository ``repo_id`` and unpublish it (``pulp_registry.repositories.delete_repository``)."""
    from pulp_registry.repositories import delete_repository as delete

    return _run(self, task_id, lambda services, progress: delete(services, repo_id, progress))


@shared_task(bind=True, name="workers.tasks.copy")
def copy(self: Any, task_id: str, **kwargs: Any) -> Any:
    """Copy images between repositories (``pulp_registry.promotion.copy_images``)."""
    from pulp_registry.promotion import copy_images

    return _run(self, task_id, lambda services, progress: copy_images(services, progress, **kwargs))


@shared_task(bind=True, name="workers.tasks.orphan_cleanup")
def orphan_cleanup(self: Any, task_id: str, **kwargs: Any) -> Any:
    """Remove what no repository holds (``pulp_registry.orphans.cleanup_orphans``)."""
    from pulp_registry.orphans import cleanup_orphans

    return _run(self, task_id, lambda services, progress: cleanup_orphans(services, progress, **kwargs))


@shared_task(bind=True, name="workers.tasks.sync")
def sync(self: Any, task_id: str, repo_id: str) -> Any:
    """Sync a repository from its feed (``pulp_registry.sync.sync_repository``)."""
    from pulp_registry.sync import sync_repository

    return _run(self, task_id, lambda services, progress: sync_repository(services, progress, repo_id=repo_id))


@shared_task(bind=True, name="workers.tasks.sync_preview")
def sync_preview(self: Any, task_id: str, repo_id: str) -> Any:
    """What a sync would do, storing nothing (``sync_repository(dry_run=True)``)."""
    from pulp_registry.sync import sync_repository

    return _run(self, task_id, lambda services, progress: sync_repository(services, progress, repo_id=repo_id,
                                                                          dry_run=True))


@shared_task(bind=True, name="workers.tasks.republish")
def republish(self: Any, task_id: str) -> Any:
    """Upgrade the published tree and publish every repository again (``pulp_registry.republish.republish_all``)."""
    from pulp_registry.republish import republish_all

    return _run(self, task_id, republish_all)
