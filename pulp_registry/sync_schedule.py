"""Scheduled syncs: every worker's reaper pass queues the syncs that are due, and only one worker wins each.

A repository whose feed has a ``sync_interval`` carries ``next_sync``.
``feeds.claim_due`` moves each due ``next_sync`` one interval on with one
conditional write, so of several workers passing at once exactly one claims a
repository; the claimer then submits a ``sync`` task, and ``tasks.submit``
answers a sync already waiting or running for it instead of queuing a second.
"""
from __future__ import annotations

import logging
from typing import Any

from pulp_registry import tasks
from pulp_registry.db import utcnow

log = logging.getLogger(__name__)


def queue_due_syncs(services: Any) -> list[str]:
    """Submit a sync for every repository whose ``next_sync`` has come; return the task ids."""
    from pulp_registry import feeds, maintenance

    if maintenance.cached_state(services.db) is not None:
        return []  # read-only maintenance: nothing is claimed, the due syncs run once it is over
    queued = []
    for repo_id in feeds.claim_due(services.db, utcnow()):
        try:
            task = tasks.submit(services, "sync", [tasks.repository_resource(repo_id)], user="scheduler",
                                repo_id=repo_id)
        except Exception:  # noqa: BLE001 - the broker is down: the next interval tries again
            log.warning("could not queue the scheduled sync of repository %s", repo_id, exc_info=True)
            continue
        queued.append(task["_id"])
    if queued:
        log.info("queued %d scheduled sync(s): %s", len(queued), ", ".join(queued))
    return queued
