"""Crane's metrics: requests (both paths), manifests and blobs served, the age of its metadata, reloads.

The fast path must stay fast: a ``prometheus_client`` increment in
multiprocess mode costs microseconds (a lock and an mmap write), several per
request. So ``CraneMetrics.record`` adds to plain ints, without a lock (about
0.3 us), and ``flush`` moves them into the Prometheus metrics: once a
second from a thread in each worker (``start_flusher``, gunicorn's
``post_worker_init``), and in the answering process before each scrape. A
scrape may therefore miss at most the last second of other workers' fast
answers. Requests Flask answers are counted directly (``RequestObserver``).
"""
from __future__ import annotations

import atexit
import bisect
import logging
import os
import threading
import time
import weakref
from datetime import datetime, timezone
from typing import Any, Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from pulp_registry.metrics import LATENCY_BUCKETS, HttpMetrics, add_observations, metric

from crane.published import PublishedTree

log = logging.getLogger(__name__)

PREFIX = "crane_http"
#: The Flask rules of the views the fast path stands in for (a test checks they are the app's).
MANIFEST_ROUTE = "/v2/<repo_name:name>/manifests/<reference:reference>"
BLOB_ROUTE = "/v2/<repo_name:name>/blobs/<reference:digest>"
#: What ``FastPath`` answers, by ``Answer.kind``: (method, route, what is served).
FAST_KINDS = (("GET", MANIFEST_ROUTE, "manifest"), ("HEAD", MANIFEST_ROUTE, "manifest"), ("HEAD", BLOB_ROUTE, "blob"))
FLUSH_INTERVAL = 1.0

_all: "weakref.WeakSet[CraneMetrics]" = weakref.WeakSet()


class CraneMetrics:
    """Every Crane metric of one app; ``record`` is the fast path's only cost."""

    def __init__(self, tree: PublishedTree) -> None:
        self.tree = tree
        self.http = HttpMetrics(PREFIX)
        self.manifests = metric(Counter, "crane_manifests_served", "Manifests served (GET and HEAD, 2xx)", ("method",))
        self.blobs = metric(Counter, "crane_blobs_served", "Blobs served or redirected (GET and HEAD)", ("method",))
        self.reloads = metric(Counter, "crane_metadata_reloads",
                              "Published changes (journal entries) applied, summed over workers")
        self._flush_lock = threading.Lock()
        self._bounds = list(LATENCY_BUCKETS)
        self._cells = self._new_cells()
        self._retired: tuple[list[list[float]], list[list[float]]] | None = None
        self._reloads_seen = getattr(tree, "reloads", 0)
        self._newest: tuple[str | None, float | None] = (None, None)
        # Pre-bound children of what the fast path answers, built once.
        self._fast = [(self.http.requests.labels(route, method, "200"),
                       self.http.duration.labels(route, method, "200"),
                       self.http.bytes.labels(route, method, "200"),
                       (self.manifests if served == "manifest" else self.blobs).labels(method))
                      for method, route, served in FAST_KINDS]
        _all.add(self)

    def _new_cells(self) -> list[list[float]]:
        """Per kind: [answers, body bytes, seconds, answers per latency bucket...]."""
        return [[0] * (3 + len(self._bounds)) for _ in FAST_KINDS]

    def _forked(self) -> None:
        """A forked worker starts with its own counts (the master's were flushed or belong to it)."""
        self._flush_lock = threading.Lock()
        self._cells = self._new_cells()
        self._retired = None

    def record(self, kind: int, body_bytes: int, seconds: float) -> None:
        """One fast-path answer of ``FAST_KINDS[kind]``: four int additions, no lock (~0.3 us).

        The bucket is found first: from taking the cells to the last addition there is
        no call and no loop, so the GIL lets no other thread (or ``flush``) run in
        between. Should one ever, it adds to cells ``flush`` just retired, and the
        next flush reads those again.
        """
        bucket = 3 + bisect.bisect_left(self._bounds, seconds)
        cells = self._cells[kind]
        cells[0] += 1
        cells[1] += body_bytes
        cells[2] += seconds
        cells[bucket] += 1

    def flush(self) -> None:
        """Move the fast path's counts and newly seen reloads into the Prometheus metrics."""
        with self._flush_lock:
            taken, self._cells = self._cells, self._new_cells()
            read = [list(cells) for cells in taken]
            retired, self._retired = self._retired, (taken, read)
            self._publish(read)
            if retired is not None:   # what threads added to the cells retired by the last flush
                cells_then, read_then = retired
                late = [[now - read for now, read in zip(cells, read_cells)]
                        for cells, read_cells in zip(cells_then, read_then)]
                if any(any(row) for row in late):
                    self._publish(late)
            reloads = getattr(self.tree, "reloads", 0)
            if reloads > self._reloads_seen:
                self.reloads.inc(reloads - self._reloads_seen)
            self._reloads_seen = reloads

    def _publish(self, cells_by_kind: list[list[float]]) -> None:
        for (requests, duration, sent, served), cells in zip(self._fast, cells_by_kind):
            count = int(cells[0])
            if count:
                requests.inc(count)
                served.inc(count)
                add_observations(duration, [int(n) for n in cells[3:]], cells[2])
            if cells[1]:
                sent.inc(cells[1])

    def served(self, route: str | None, method: str, status: int) -> None:
        """Count what Flask served (``RequestObserver``'s hook): manifests 2xx, blobs 2xx or redirected."""
        if method not in ("GET", "HEAD"):
            return
        if route == MANIFEST_ROUTE and 200 <= status < 300:
            self.manifests.labels(method).inc()
        elif route == BLOB_ROUTE and 200 <= status < 400:
            self.blobs.labels(method).inc()

    def newest_published(self) -> float | None:
        """When the newest version this worker saw (loaded, or named by the journal) was published (POSIX s)."""
        newest = self.tree.newest_version
        cached_version, cached = self._newest
        if cached_version == newest:
            return cached
        value = version_time(newest) if newest else None
        self._newest = (newest, value)
        return value

    def collect(self) -> Iterator[Any]:
        """Computed at scrape time in the answering worker, after it caught up with the tree."""
        self.tree.refresh_if_due()
        yield GaugeMetricFamily("crane_repositories_cached",
                                "Repositories this worker holds in memory (loaded when asked for, within "
                                "repository_cache_mib)", value=len(self.tree.repositories))
        yield GaugeMetricFamily("crane_tags_cached",
                                "Hot tags of repositories not held whole that this worker holds in memory, each "
                                "read from its tag document (within repository_cache_mib)",
                                value=self.tree.repositories.tag_entries)
        newest = self.newest_published()
        if newest is not None:
            yield GaugeMetricFamily("crane_metadata_newest_published_timestamp_seconds",
                                    "When the newest version this Crane has seen was published", value=newest)
            yield GaugeMetricFamily("crane_metadata_age_seconds",
                                    "Seconds since the newest version this Crane has seen was published",
                                    value=max(time.time() - newest, 0.0))


def version_time(version: str) -> float | None:
    """The publish time a version directory's name starts with (``20261202T114631.187000Z-<random>``)."""
    try:
        return datetime.strptime(version.split("-", 1)[0], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def _forked_all() -> None:
    for metrics in list(_all):
        metrics._forked()


os.register_at_fork(after_in_child=_forked_all)


def flush_all() -> None:
    for metrics in list(_all):
        try:
            metrics.flush()
        except Exception:  # noqa: BLE001 - the next flush tries again
            log.warning("could not flush Crane's metrics", exc_info=True)


def start_flusher(interval: float = FLUSH_INTERVAL) -> threading.Thread:
    """In a gunicorn worker: flush the fast path's counts every ``interval`` seconds, and at exit."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(interval):
            flush_all()

    thread = threading.Thread(target=run, name="crane-metrics-flush", daemon=True)
    thread.start()
    atexit.register(flush_all)
    return thread
