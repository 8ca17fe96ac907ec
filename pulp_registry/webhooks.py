"""Webhooks: Docker distribution's notification envelope, sent to the ``webhooks`` endpoints by Celery.

Events (one per envelope, ``{"events": [event]}``, ``Content-Type:
application/vnd.docker.distribution.events.v1+json``), so listeners written for
distribution's notifications work unchanged:

- ``push``: a manifest PUT on the admin side's ``/v2/`` (``registry-admin push`` goes there too);
- ``pull``: a manifest GET on the admin side's ``/v2/``. Crane's pulls are not notified: Crane
  holds no database and no broker connection by design (it only reads the published tree), so it
  has nothing to send through; count Crane's pulls with its metrics or access log instead;
- ``delete``: a manifest or tag removed (``/v2/`` DELETE, ``repositories/<id>/actions/remove/``),
  a blob unlinked over ``/v2/``, and a repository once its ``delete_repository`` task finished;
- ``task``: a task ended (finished, error, canceled), with its id, type, state, repository and error.

Each event has distribution's fields: ``id``, ``timestamp``, ``action``, ``target`` (``mediaType``,
``size``, ``digest``, ``length``, ``repository``, ``url``, ``tag``), ``request`` (``id``, ``addr``,
``host``, ``method``, ``useragent``), ``actor`` (``name``) and ``source`` (``addr``, ``instanceID``).

Delivery is the Celery task ``workers.webhook_tasks.deliver`` (one message per endpoint and
envelope, late acknowledgement, retries with exponential backoff), so the request that caused an
event never waits for a listener. The message names its endpoint by URL and never carries its
secret: the worker takes it from its own settings. With ``secret`` set the body is signed::

    X-Registry-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed by the secret>

Delivery is at least once: a listener may see an event twice (after a worker died between its
POST and the acknowledgement) and should skip an ``id`` it has seen.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import uuid
from typing import Any, Iterable

from pulp_registry.db import isoformat, utcnow
from pulp_registry.webhook_settings import redact, validate_url

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
SIGNATURE_HEADER = "X-Registry-Signature"
EVENT_ID_HEADER = "X-Registry-Event-Id"
DELIVER_TASK = "workers.webhook_tasks.deliver"
USER_AGENT = "pulp-registry-webhooks"
#: This process in ``source.instanceID``: a listener can tell the processes of the registry apart.
INSTANCE_ID = str(uuid.uuid4())


class RetryableDelivery(Exception):
    """The listener did not take the envelope but may later: a refused connection, a timeout, a 5xx."""


class FailedDelivery(Exception):
    """The listener refused the envelope for good (a 4xx other than 408/429, a redirect)."""


# --- events ---------------------------------------------------------------------------


def _request_info() -> dict[str, Any]:
    """``request`` of an event caused by an HTTP request (empty fields outside one)."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {"id": "", "addr": "", "host": "", "method": "", "useragent": ""}
    request_id = g.get("request_id") or request.headers.get("X-Request-ID") or ""
    if not request_id:
        request_id = g.request_id = str(uuid.uuid4())
    return {"id": request_id, "addr": request.remote_addr or "", "host": request.host,
            "method": request.method, "useragent": request.headers.get("User-Agent", "")}


def _actor() -> dict[str, Any]:
    from flask import has_request_context

    if not has_request_context():
        return {"name": ""}
    from pulp_registry.tasks import requesting_user

    return {"name": requesting_user() or ""}


def _base_url(services: Any) -> str:
    from flask import has_request_context, request

    if services.settings.api_public_url:
        return services.settings.api_public_url
    return request.host_url.rstrip("/") if has_request_context() else ""


def event(action: str, target: dict[str, Any], *, actor: str | None = None) -> dict[str, Any]:
    """One event in distribution's shape; ``target`` keys with None values are left out."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": isoformat(utcnow()),
        "action": action,
        "target": {key: value for key, value in target.items() if value is not None},
        "request": _request_info(),
        "actor": {"name": actor} if actor is not None else _actor(),
        "source": {"addr": socket.gethostname(), "instanceID": INSTANCE_ID},
    }


def manifest_event(services: Any, action: str, repository: str, *, digest: str | None = None,
                   media_type: str | None = None, size: int | None = None, tag: str | None = None) -> dict[str, Any]:
    """A push, pull or delete of a manifest (or of a tag only: ``tag`` without ``digest``)."""
    url = f"{_base_url(services)}/v2/{repository}/manifests/{digest or tag}" if (digest or tag) else None
    return event(action, {"mediaType": media_type, "size": size, "digest": digest, "length": size,
                          "repository": repository, "url": url, "tag": tag})


def blob_event(services: Any, action: str, repository: str, digest: str) -> dict[str, Any]:
    return event(action, {"mediaType": "application/octet-stream", "digest": digest, "repository": repository,
                          "url": f"{_base_url(services)}/v2/{repository}/blobs/{digest}"})


def removal_events(services: Any, repository: str, removed: dict[str, Any]) -> list[dict[str, Any]]:
    """``delete`` events of what a removal took out (``removal.remove_content``'s answer)."""
    events = [manifest_event(services, "delete", repository, tag=tag) for tag in removed.get("tags") or []]
    for key in ("manifests", "referrers"):
        events += [manifest_event(services, "delete", repository, digest=digest) for digest in removed.get(key) or []]
    return events


def _repository_of(services: Any, task: dict[str, Any]) -> str | None:
    """The name of the repository a task worked on (from its result when the task deleted it)."""
    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    if task.get("task_type") == "delete_repository" and result.get("name"):
        return str(result["name"])
    for resource in task.get("resources") or []:
        if resource.startswith("repository:"):
            repo = services.db.repositories.find_one({"_id": resource.partition(":")[2]}, {"name": 1})
            return repo["name"] if repo else None
    return None


def task_events(services: Any, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``task`` event of an ended task, and the ``delete`` event of a repository it deleted."""
    repository = _repository_of(services, task)
    task_id = task["_id"]
    target = {"repository": repository, "url": f"{_base_url(services)}/pulp/api/v2/tasks/{task_id}/",
              "task": {"id": task_id, "type": task.get("task_type"), "state": task.get("state"),
                       "error": task.get("error"), "parent": task.get("parent")}}
    events = [event("task", target, actor=task.get("user") or "")]
    if task.get("task_type") == "delete_repository" and task.get("state") == "finished" and repository:
        events.append(event("delete", {"repository": repository}, actor=task.get("user") or ""))
    return events


# --- sending (the admin side and workers) ---------------------------------------------


def wanted(services: Any, action: str) -> bool:
    """Whether any endpoint wants ``action`` events (checked before an event is even built)."""
    return any(action in endpoint["events"] for endpoint in getattr(services.settings, "webhooks", None) or [])


def envelope(events: Iterable[dict[str, Any]]) -> str:
    return json.dumps({"events": list(events)}, separators=(",", ":"), sort_keys=True)


def notify(services: Any, events: Iterable[dict[str, Any]]) -> int:
    """Queue one delivery per endpoint that wants the event; never raises (an event is not worth a
    failed push). Returns how many deliveries were queued."""
    endpoints = getattr(services.settings, "webhooks", None) or []
    celery = getattr(services, "celery", None)
    if not endpoints or celery is None:
        return 0
    queued = 0
    for each in events:
        for endpoint in endpoints:
            if each["action"] not in endpoint["events"]:
                continue
            try:
                celery.signature(DELIVER_TASK, kwargs={"url": endpoint["url"], "body": envelope([each])}).apply_async(
                    retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                              "interval_max": 0.5})
                queued += 1
            except Exception:  # noqa: BLE001 - the broker is down: the event is lost, the change is not
                log.warning("could not queue the %s event %s for %s", each["action"], each["id"],
                            redact(endpoint["url"]), exc_info=True)
    return queued


def task_ended(services: Any, task_id: str) -> None:
    """Notify the end of task ``task_id`` (called where its outcome was recorded); never raises."""
    if not getattr(services.settings, "webhooks", None):
        return
    try:
        task = services.db.tasks.find_one({"_id": task_id})
        if task is not None:
            notify(services, task_events(services, task))
    except Exception:  # noqa: BLE001 - a notification never fails the task
        log.warning("could not notify the end of task %s", task_id, exc_info=True)


# --- delivery (the worker's side) -----------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: what ``X-Registry-Signature`` holds for ``body`` and ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(endpoint: dict[str, Any], retries: int) -> float:
    """Seconds before retry number ``retries + 1``: ``retry_delay`` doubled each time, capped."""
    return float(min(endpoint["max_retry_delay"], endpoint["retry_delay"] * (2 ** min(retries, 30))))


def post(endpoint: dict[str, Any], body: str) -> int:
    """POST ``body`` to the endpoint once; its status if 2xx. ``RetryableDelivery`` or ``FailedDelivery`` else."""
    import requests

    url = validate_url(endpoint["url"])  # before use, whatever the message says
    data = body.encode()
    headers = {"Content-Type": MEDIA_TYPE, "User-Agent": USER_AGENT}
    try:
        headers[EVENT_ID_HEADER] = ",".join(item["id"] for item in json.loads(body)["events"])
    except (ValueError, KeyError, TypeError):
        raise FailedDelivery("the envelope is not valid JSON with events") from None
    if endpoint.get("secret"):
        headers[SIGNATURE_HEADER] = signature(endpoint["secret"], data)
    try:
        response = requests.post(url, data=data, headers=headers, timeout=endpoint["timeout"],
                                 allow_redirects=False)
    except requests.RequestException as exc:
        raise RetryableDelivery(f"{redact(url)}: {type(exc).__name__}: {exc}") from None
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return status
    if status in (408, 429) or status >= 500:
        raise RetryableDelivery(f"{redact(url)} answered {status}")
    raise FailedDelivery(f"{redact(url)} answered {status}")
