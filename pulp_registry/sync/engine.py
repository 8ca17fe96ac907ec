"""Sync a repository from its feed: plan, download what is missing, then make it visible, tags last.

Order is what makes a sync safe to kill: blobs are streamed into content
storage (hashed, checked against digest and size, renamed into place), then
associated; then child manifests, lists, referrers; the tags last. Until a
tag moves nothing a client can pull has changed, and every manifest written
refers only to what is already held. A killed sync leaves blobs in storage
that no repository holds yet; the rerun finds them there and downloads only
the rest (orphan clean-up removes them if no rerun comes).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from pulp_registry import content, history
from pulp_registry.registry_errors import DigestInvalid, RegistryError, SizeInvalid
from pulp_registry.sync.plan import SyncPlan, build_plan
from pulp_registry.sync.upstream import UpstreamClient, UpstreamError
from pulp_registry.tasks import Progress

log = logging.getLogger(__name__)

#: Whole-blob attempts when a download breaks off mid-way (each request retries on its own too).
BLOB_TRIES = 3


class SyncError(Exception):
    """The sync cannot go on; the message says why in one line."""


def _load_feed(services: Any, repo_id: str) -> Any:
    from pulp_registry import feeds

    feed = feeds.get_feed(services.db, repo_id)
    if feed is None:
        raise SyncError(f"repository {repo_id!r} has no feed to sync from")
    return feed


def sync_repository(services: Any, progress: Progress | None = None, *, repo_id: str,
                    dry_run: bool = False, feed: Any = None,
                    client_factory: Callable[[Any], UpstreamClient] = UpstreamClient) -> dict[str, Any]:
    """Bring repository ``repo_id`` up to date with its feed (``feed`` overrides the stored one).

    Returns ``{"added", "updated", "removed", "skipped", "manifests", "blobs", "bytes",
    "publish_task"}``; a dry run computes the same plan, stores nothing and adds ``bytes_to_fetch``.
    """
    report = progress if progress is not None else (lambda _report: None)
    repo = services.db.repositories.find_one({"_id": repo_id})
    if repo is None:
        raise SyncError(f"repository {repo_id!r} does not exist")
    feed = feed if feed is not None else _load_feed(services, repo_id)
    with client_factory(feed) as client:
        plan = build_plan(services, repo_id, feed, client, report)
        if dry_run:
            return _result(plan, fetched_blobs=len(plan.to_fetch), fetched_bytes=plan.bytes_to_fetch,
                           publish_task=None, dry_run=True)
        fetched_blobs, fetched_bytes = download_blobs(services, client, plan, feed, report)
    _associate(services, repo_id, plan, report)
    if plan.removed:
        from pulp_registry.removal import remove_content

        remove_content(services, repo, tags=plan.removed)
    changed = bool(plan.added or plan.updated or plan.removed or plan.new_manifests)
    publish_task = None
    if getattr(feed, "publish", True) and (changed or not repo.get("last_published")):
        publish_task = content.request_publish(services, repo_id)
    result = _result(plan, fetched_blobs, fetched_bytes, publish_task)
    history.record(services.db, repo_id, "sync", {
        "added": len(plan.added), "updated": len(plan.updated), "removed": len(plan.removed),
        "skipped": len(plan.skipped), "manifests": result["manifests"], "blobs": fetched_blobs,
        "bytes": fetched_bytes})
    return result


def _result(plan: SyncPlan, fetched_blobs: int, fetched_bytes: int, publish_task: Any,
            dry_run: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {
        "added": sorted(plan.added), "updated": sorted(plan.updated), "removed": sorted(plan.removed),
        "skipped": plan.skipped,
        "manifests": len(plan.new_manifests), "blobs": fetched_blobs, "bytes": fetched_bytes,
        "publish_task": publish_task.get("_id") if isinstance(publish_task, dict) else publish_task,
    }
    if dry_run:
        result["bytes_to_fetch"] = plan.bytes_to_fetch
        result["dry_run"] = True
    return result


# --- blobs ----------------------------------------------------------------------------------


def _fetch_blob(services: Any, client: UpstreamClient, digest: str, size: int, stop: threading.Event) -> int:
    """Stream one blob into content storage, verified; retried whole if the download breaks off."""
    for attempt in range(1, BLOB_TRIES + 1):
        if stop.is_set():
            return 0
        try:
            with client.open_blob(digest) as stream:
                return services.storage.put_stream(stream, digest, size)
        except UpstreamError:
            if attempt == BLOB_TRIES:
                raise
            log.info("download of %s broke off; trying again (%d of %d)", digest, attempt + 1, BLOB_TRIES)
        except (DigestInvalid, SizeInvalid) as exc:
            raise UpstreamError(f"blob {digest} from {client.base_url}/{client.name} does not match its "
                                f"digest and size: {exc.message if hasattr(exc, 'message') else exc}; "
                                "nothing of it was kept") from None
    return 0


def download_blobs(services: Any, client: UpstreamClient, plan: SyncPlan, feed: Any,
                   report: Progress) -> tuple[int, int]:
    """Download ``plan.to_fetch`` with at most ``feed.max_downloads`` at once; (blobs, bytes) fetched.

    Progress is reported from this thread, so a ``TaskStopped`` it raises stops the pool: blobs
    not started are not fetched, those under way end, and nothing is associated.
    """
    total_blobs, total_bytes = len(plan.to_fetch), plan.bytes_to_fetch
    done_blobs = done_bytes = 0
    report({"step": "blobs", "done": 0, "total": total_blobs})
    report({"step": "bytes", "done": 0, "total": total_bytes})
    if not plan.to_fetch:
        return 0, 0
    stop = threading.Event()
    workers = max(1, min(int(getattr(feed, "max_downloads", 4) or 4), 32))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync-blob")
    pending: set[Future[int]] = set()
    try:
        pending = {pool.submit(_fetch_blob, services, client, digest, size, stop)
                   for digest, size in plan.to_fetch.items()}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                done_bytes += future.result()
                done_blobs += 1
            report({"step": "blobs", "done": done_blobs, "total": total_blobs})
            report({"step": "bytes", "done": done_bytes, "total": total_bytes})
    finally:
        stop.set()
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)
    return done_blobs, done_bytes


# --- making it visible ---------------------------------------------------------------------


def _associate(services: Any, repo_id: str, plan: SyncPlan, report: Progress) -> None:
    """Blobs, then manifests (children and subjects first, as planned), then tags."""
    for digest, size in plan.blobs.items():
        try:
            content.add_blob(services, repo_id, digest, size)
        except RegistryError as exc:
            raise SyncError(f"blob {digest}: {exc.message}") from None
    to_write = plan.new_manifests
    for done, digest in enumerate(to_write, 1):
        planned = plan.manifests[digest]
        try:
            content.keep_synced_manifest(services, repo_id, planned.raw, planned.manifest, planned.partial)
        except RegistryError as exc:
            raise SyncError(f"manifest {digest}: {exc.message}") from None
        report({"step": "manifests", "done": done, "total": len(to_write)})
    for tag in plan.added + plan.updated:
        content.set_tag(services.db, repo_id, tag, plan.tags[tag])
