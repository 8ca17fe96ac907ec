"""Prometheus metrics shared by the admin API, Crane and the workers (``prometheus_client``).

Pure (prometheus_client only), so Crane imports it too.

Several processes, one view: gunicorn runs several worker processes, and a
scrape reaches whichever one answers. ``start_multiprocess`` (called in the
gunicorn master, before any metric exists) points ``PROMETHEUS_MULTIPROC_DIR``
at a fresh private directory; every process then writes its values into files
there, ``/metrics`` sums them (``MultiProcessCollector``), and the
``child_exit`` hook of ``gunicorn_hooks`` marks a dead worker's files. Without
it (``pulp-registry dev``, Flask's test client) the process's own registry is
exposed. Label values are bounded sets: a route *template*, a method, a status
code, a task type or state; never a raw path, digest, repository or user.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from typing import Any, Callable, Iterable, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds; manifests answer in well under a millisecond, uploads may take minutes.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0, float("inf"))
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
#: Route label of a request no route matched (its path is never a label).
UNMATCHED = "unmatched"


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def start_multiprocess(prefix: str) -> str:
    """Give this server a fresh private multiprocess directory; call before forking workers.

    Must run before the first metric is created: ``prometheus_client`` picks its
    value class when it is imported, so it is picked again here if it was already.
    """
    directory = tempfile.mkdtemp(prefix=f"{prefix}-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    if "prometheus_client.values" in sys.modules:
        from prometheus_client import values

        values.ValueClass = values.get_value_class()
    return directory


def gunicorn_hooks(directory: str) -> dict[str, Callable[..., None]]:
    """gunicorn server hooks for multiprocess mode: forget dead workers' live gauges; remove the directory at exit."""
    def child_exit(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, directory)

    def on_exit(server: Any) -> None:
        shutil.rmtree(directory, ignore_errors=True)

    return {"child_exit": child_exit, "on_exit": on_exit}


class _DefaultRegistry:
    """This process's own metrics, when no multiprocess directory is set."""

    def collect(self) -> Iterable[Any]:
        return DEFAULT_REGISTRY.collect()


def exposition(collectors: Sequence[Any] = ()) -> bytes:
    """The Prometheus text of every process's metrics, then ``collectors`` (computed now, in this process)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_enabled():
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())  # type: ignore[arg-type]
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


_families: dict[str, Any] = {}


def metric(kind: type, name: str, documentation: str, labels: Sequence[str] = (), **kwargs: Any) -> Any:
    """One metric per name and process, however many apps are built (tests build hundreds)."""
    existing = _families.get(name)
    if existing is None:
        existing = _families[name] = kind(name, documentation, list(labels), **kwargs)
    return existing


class HttpMetrics:
    """``<prefix>_requests_total``, ``<prefix>_request_duration_seconds`` and ``<prefix>_response_bytes_total``
    by route template, method and status."""

    def __init__(self, prefix: str) -> None:
        labels = ("route", "method", "status")
        self.requests = metric(Counter, f"{prefix}_requests", "HTTP requests answered", labels)
        self.duration = metric(Histogram, f"{prefix}_request_duration_seconds",
                               "Seconds from a request's arrival until its response headers were ready",
                               labels, buckets=LATENCY_BUCKETS)
        self.bytes = metric(Counter, f"{prefix}_response_bytes", "Bytes of response bodies sent", labels)

    def observe(self, route: str | None, method: str, status: int, seconds: float, body_bytes: int) -> None:
        labels = (route or UNMATCHED, method if method in METHODS else "other", str(status))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)
        if body_bytes:
            self.bytes.labels(*labels).inc(body_bytes)


def add_observations(histogram_child: Any, bucket_counts: Sequence[int], total: float) -> None:
    """Add many observations at once (counted per bucket, not cumulative, in ``LATENCY_BUCKETS`` order).

    For counters kept as plain ints on a hot path and flushed later; uses the
    histogram child's value cells, as ``Histogram.observe`` does.
    """
    histogram_child._sum.inc(total)
    for cell, count in zip(histogram_child._buckets, bucket_counts):
        if count:
            cell.inc(count)
