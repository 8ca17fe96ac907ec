"""``/livez`` and ``/readyz`` of the admin side (no login), and the operations part of the status report.

``/livez`` says the process answers; ``/readyz`` says it can do its work:
MongoDB answers a ping and the broker accepts a connection. Each check is
bounded in time (a database or broker that swallows packets cannot hang the
call), and results are kept ``READINESS_TTL`` seconds so a load balancer
polling many API processes cannot hammer MongoDB or the broker.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry.api.responses import json_response

blueprint = Blueprint("health", __name__)

#: Seconds a readiness result is reused.
READINESS_TTL = 1.5
#: Seconds the database ping may take before the database counts as down.
DATABASE_CHECK_TIMEOUT = 2.0
_READINESS_ATTRIBUTE = "_registry_readiness"
_READINESS_LOCK = threading.Lock()


class BoundedCheck:
    """Runs ``check`` in a daemon thread and waits at most ``timeout``; a check still stuck is not started again."""

    def __init__(self, name: str, check: Callable[[], bool], timeout: float) -> None:
        self.name = name
        self.check = check
        self.timeout = timeout
        self._thread: threading.Thread | None = None
        self._outcome = False

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return   # the last one still hangs: wait() reports it failing again
        self._outcome = False

        def run() -> None:
            try:
                self._outcome = bool(self.check())
            except Exception:  # noqa: BLE001 - any failure means "not reachable"
                self._outcome = False

        self._thread = threading.Thread(target=run, name=f"readiness-{self.name}", daemon=True)
        self._thread.start()

    def wait(self, deadline: float) -> bool:
        assert self._thread is not None
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        return self._outcome and not self._thread.is_alive()


class Readiness:
    """Whether MongoDB and the broker answer, checked in parallel, each result kept ``ttl`` seconds."""

    def __init__(self, services: Any, ttl: float = READINESS_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from pulp_registry.api.status import BROKER_CHECK_TIMEOUT, broker_connected

        self.ttl = ttl
        self.clock = clock
        broker_url = services.settings.broker_url
        self.checks = [
            BoundedCheck("database", services.db.ping, DATABASE_CHECK_TIMEOUT),
            # broker_connected bounds itself; the extra second only covers its own thread's start.
            BoundedCheck("broker", lambda: broker_connected(broker_url), BROKER_CHECK_TIMEOUT + 1.0),
        ]
        self._lock = threading.Lock()
        self._results: dict[str, bool] | None = None
        self._expires = 0.0

    def results(self) -> dict[str, bool]:
        """``{"database": bool, "broker": bool}``; callers arriving during a check wait for its result."""
        with self._lock:
            if self._results is None or self.clock() >= self._expires:
                started = time.monotonic()
                for check in self.checks:
                    check.start()
                self._results = {check.name: check.wait(started + check.timeout) for check in self.checks}
                self._expires = self.clock() + self.ttl
            return dict(self._results)

    def failing(self) -> list[str]:
        return [name for name, ok in self.results().items() if not ok]


def readiness_for(services: Any) -> Readiness:
    """The one ``Readiness`` of these services (kept on them, so every request of the process shares it)."""
    readiness = getattr(services, _READINESS_ATTRIBUTE, None)
    if readiness is None:
        with _READINESS_LOCK:
            readiness = getattr(services, _READINESS_ATTRIBUTE, None)
            if readiness is None:
                readiness = Readiness(services)
                setattr(services, _READINESS_ATTRIBUTE, readiness)
    return readiness


def queue_depth(db: Any) -> dict[str, int]:
    """Tasks waiting for a worker and tasks running now."""
    from pulp_registry.tasks import TaskState

    return {"waiting": db.tasks.count_documents({"state": TaskState.WAITING.value}),
            "running": db.tasks.count_documents({"state": TaskState.RUNNING.value})}


def read_only_report(db: Any) -> dict[str, Any]:
    """Read-only maintenance mode as the status shows it; ``{"enabled": False}`` without the feature."""
    try:
        from pulp_registry.maintenance import read_only_state
    except ImportError:
        return {"enabled": False}
    from pulp_registry.db import isoformat

    state = read_only_state(db)
    if not state:
        return {"enabled": False}
    return {"enabled": True, "reason": state.get("reason"), "since": isoformat(state.get("since")),
            "user": state.get("user")}


def operations_report(services: Any, connected: dict[str, bool]) -> dict[str, Any]:
    """What an operator looks at: workers with their last heartbeat, queue depth, read-only state.

    Skipped (None or empty) when the database is down, so the status call does not wait for it again.
    """
    from pulp_registry.worker_heartbeats import worker_states

    report: dict[str, Any] = {"workers": [], "queue": None, "read_only": None}
    if not connected.get("database"):
        return report
    try:
        report["workers"] = worker_states(services.db)
        report["queue"] = queue_depth(services.db)
        report["read_only"] = read_only_report(services.db)
    except Exception:  # noqa: BLE001 - the status call reports what it can
        pass
    return report


def _no_store(document: dict[str, Any], status: int = 200) -> Response:
    return json_response(document, status, {"Cache-Control": "no-store"})


@blueprint.get("/livez")
def livez() -> Response:
    """The process is alive and answers; nothing else is checked (a restart would not fix MongoDB)."""
    return _no_store({"status": "alive"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """200 when MongoDB and the broker answer; 503 naming the failing ones (``failing``)."""
    from pulp_registry.services import current_services

    results = readiness_for(current_services()).results()
    failing = [name for name, ok in results.items() if not ok]
    checks = {name: "ok" if ok else "unreachable" for name, ok in results.items()}
    if failing:
        return _no_store({"status": "unready", "failing": failing, "checks": checks}, 503)
    return _no_store({"status": "ready", "checks": checks})
