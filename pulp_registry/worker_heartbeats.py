"""Which workers are alive: each writes a heartbeat document while it runs (Pulp 2's worker list).

The status call lists the workers heard from recently; a worker that stops
cleanly removes its document, one that dies simply goes quiet.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pulp_registry.db import Collections, as_utc, isoformat, utcnow
from pulp_registry.periodic import Periodic

log = logging.getLogger(__name__)

#: Seconds between heartbeats; a worker unheard of for three of them is not listed.
HEARTBEAT_INTERVAL = 10.0


def record_heartbeat(db: Collections, name: str) -> None:
    db.workers.update_one({"_id": name}, {"$set": {"last_heartbeat": utcnow()}}, upsert=True)


def live_workers(db: Collections, interval: float = HEARTBEAT_INTERVAL) -> list[dict[str, Any]]:
    since = utcnow() - timedelta(seconds=3 * interval)
    return [{"name": worker["_id"], "last_heartbeat": isoformat(worker["last_heartbeat"])}
            for worker in db.workers.find({"last_heartbeat": {"$gte": since}}).sort("_id", 1)]


def worker_states(db: Collections, interval: float = HEARTBEAT_INTERVAL) -> list[dict[str, Any]]:
    """Every worker with a heartbeat record: its last heartbeat, seconds since, and whether it counts as online.

    A worker that died keeps its record (only a clean stop removes it), so the status shows it offline.
    """
    now = utcnow()
    states = []
    for worker in db.workers.find({}).sort("_id", 1):
        last = as_utc(worker.get("last_heartbeat"))
        age = (now - last).total_seconds() if last is not None else None
        states.append({"id": worker["_id"], "last_heartbeat": isoformat(last),
                       "seconds_since_heartbeat": None if age is None else round(max(age, 0.0), 1),
                       "online": age is not None and age <= 3 * interval})
    return states


class Heartbeat(Periodic):
    """Records ``name`` as alive every ``interval`` seconds until stopped; stopping removes the record."""

    def __init__(self, db: Collections, name: str, interval: float = HEARTBEAT_INTERVAL) -> None:
        super().__init__(f"heartbeat-{name}", interval, lambda: record_heartbeat(db, name))
        self.db = db
        self.worker_name = name

    def stop(self) -> None:
        super().stop()
        try:
            self.db.workers.delete_one({"_id": self.worker_name})
        except Exception:  # noqa: BLE001 - the document just goes stale
            log.warning("could not remove the heartbeat of worker %s", self.worker_name, exc_info=True)
