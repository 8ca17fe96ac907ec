"""Which workers are alive: each writes a heartbeat document while it runs (Pulp 2's worker list).

The status call lists the workers heard from recently; a worker that stops
cleanly removes its document, one that dies simply goes quiet.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from pulp_registry.db import Collections, isoformat, utcnow

log = logging.getLogger(__name__)

#: Seconds between heartbeats; a worker unheard of for three of them is not listed.
HEARTBEAT_INTERVAL = 10.0


def record_heartbeat(db: Collections, name: str) -> None:
    db.workers.update_one({"_id": name}, {"$set": {"last_heartbeat": utcnow()}}, upsert=True)


def live_workers(db: Collections, interval: float = HEARTBEAT_INTERVAL) -> list[dict[str, Any]]:
    since = utcnow() - timedelta(seconds=3 * interval)
    return [{"name": worker["_id"], "last_heartbeat": isoformat(worker["last_heartbeat"])}
            for worker in db.workers.find({"last_heartbeat": {"$gte": since}}).sort("_id", 1)]


class Heartbeat:
    """Records ``name`` as alive every ``interval`` seconds from a daemon thread until stopped."""

    def __init__(self, db: Collections, name: str, interval: float = HEARTBEAT_INTERVAL) -> None:
        self.db = db
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.db.workers.delete_one({"_id": self.name})
        except Exception:  # noqa: BLE001 - the document just goes stale
            log.warning("could not remove the heartbeat of worker %s", self.name, exc_info=True)

    def _run(self) -> None:
        while True:
            try:
                record_heartbeat(self.db, self.name)
            except Exception:  # noqa: BLE001 - the next beat may get through
                log.warning("could not record the heartbeat of worker %s", self.name, exc_info=True)
            if self._stop.wait(self.interval):
                return
