"""Task metrics: counts from MongoDB at scrape time (admin ``/metrics``), durations from the workers.

Counts by type and state, the queue depth and the workers online are what the
database says when Prometheus asks, so they are right however many API and
worker processes there are: ``TaskCollector`` runs one aggregate on ``tasks``
and one query on ``workers`` per scrape. Durations can only be measured where
tasks end: ``observe_task`` records them in the worker process, and each
``pulp-registry worker`` serves its own ``/metrics`` on ``worker_metrics_bind``
(Celery's prefork children write into the worker's private multiprocess
directory, which that server sums). In ``pulp-registry dev`` the worker runs
inside the API process, so the API's ``/metrics`` shows the durations too.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Iterator

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

from pulp_registry.metrics import metric

log = logging.getLogger(__name__)

#: Seconds: a publish takes well under a second, a sync of a big repository hours.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 10800.0, float("inf"))


def _known(value: Any, known: Any) -> str:
    return value if isinstance(value, str) and value in known else "other"


def observe_task(task_type: str, state: str, seconds: float) -> None:
    """Count one task that ended in this process (``task_runner``); never fails the task."""
    from pulp_registry.tasks import TASK_NAMES, TaskState

    try:
        histogram = metric(Histogram, "pulp_registry_task_duration_seconds",
                           "Seconds tasks ran in this worker, by type and final state", ("type", "state"),
                           buckets=DURATION_BUCKETS)
        histogram.labels(_known(task_type, TASK_NAMES), _known(state, {s.value for s in TaskState})).observe(seconds)
    except Exception:  # noqa: BLE001 - a metric must never fail a task
        log.warning("could not record the duration of a %s task", task_type, exc_info=True)


def observe_ended(task: dict[str, Any] | None, state: str) -> None:
    """Count ``task`` (the document ``run_task`` claimed, with its ``started`` time) as ended in ``state`` now."""
    if not task:
        return
    started = task.get("started")
    if not isinstance(started, datetime):
        return
    if started.tzinfo is None:
        started = started.replace(tzinfo=timezone.utc)
    observe_task(task.get("task_type", ""), state, max((datetime.now(timezone.utc) - started).total_seconds(), 0.0))


class TaskCollector:
    """Tasks by type and state, queue depth and live workers, read from MongoDB at each scrape."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        from pulp_registry.tasks import TASK_NAMES, TaskState
        from pulp_registry.worker_heartbeats import live_workers

        up = GaugeMetricFamily("pulp_registry_database_up", "1 if the last scrape could read MongoDB")
        try:
            rows = list(self.db.tasks.aggregate([
                {"$group": {"_id": {"type": "$task_type", "state": "$state"}, "count": {"$sum": 1}}}]))
            workers = len(live_workers(self.db))
        except Exception as exc:  # noqa: BLE001 - a scrape answers without task counts, it does not fail
            log.warning("metrics: cannot read tasks from MongoDB: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        states = [state.value for state in TaskState]
        counts = {(task_type, state): 0 for task_type in TASK_NAMES for state in states}
        for row in rows:
            key = (_known(row["_id"].get("type"), TASK_NAMES), _known(row["_id"].get("state"), states))
            counts[key] = counts.get(key, 0) + int(row["count"])
        tasks = GaugeMetricFamily("pulp_registry_tasks", "Task documents by type and state", labels=["type", "state"])
        for (task_type, state), count in sorted(counts.items()):
            tasks.add_metric([task_type, state], count)
        yield tasks
        waiting = sum(count for (_, state), count in counts.items() if state == TaskState.WAITING.value)
        yield GaugeMetricFamily("pulp_registry_task_queue_depth", "Tasks waiting to run", value=waiting)
        yield GaugeMetricFamily("pulp_registry_workers_online", "Workers heard from within three heartbeats",
                                value=workers)
        up.add_metric([], 1)
        yield up


def serve_worker_metrics(bind: str) -> Any:
    """Start this worker's metrics server on ``bind`` (HOST:PORT) in a thread; None (logged) if it cannot listen.

    Call before Celery forks its pool, with a multiprocess directory set
    (``metrics.start_multiprocess``), so the children's values are summed.
    """
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    host, _, port = bind.rpartition(":")
    from pulp_registry.metrics import DEFAULT_REGISTRY, multiprocess_enabled

    registry = DEFAULT_REGISTRY
    if multiprocess_enabled():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    try:
        server, _thread = start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry)
    except (OSError, ValueError) as exc:
        log.warning("worker metrics not served: cannot listen on %s: %s", bind, exc)
        return None
    log.info("worker metrics on http://%s/metrics", bind)
    return server
