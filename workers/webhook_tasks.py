"""The Celery task that delivers one webhook envelope to one endpoint (``pulp_registry.webhooks``).

``acks_late`` with ``reject_on_worker_lost``: the message is acknowledged only
once the delivery ended (taken, refused for good, or out of retries), so a
worker that dies or restarts meanwhile leaves it to the broker, which hands
it to another worker (RabbitMQ at once; Redis once its ``visibility_timeout``
has passed). A retry is a new message sent with a countdown before the old one
is acknowledged. Retries: on a refused connection, a timeout, 408, 429 and 5xx,
after ``retry_delay`` seconds doubled each time up to ``max_retry_delay``, at
most ``max_retries`` times (settings of the endpoint).
"""
from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from pulp_registry import webhooks
from pulp_registry.webhook_settings import endpoint_for, redact
from workers import context

log = logging.getLogger(__name__)


@shared_task(bind=True, name=webhooks.DELIVER_TASK, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=None)
def deliver(self: Any, url: str, body: str) -> str:
    """POST ``body`` to the configured endpoint ``url``; returns what happened (for logs and tests)."""
    endpoint = endpoint_for(context.get_services().settings.webhooks, url)
    if endpoint is None:
        log.warning("webhook %s is no longer configured: event dropped", redact(url))
        return "dropped"
    attempt = self.request.retries + 1
    try:
        status = webhooks.post(endpoint, body)
    except webhooks.FailedDelivery as exc:
        log.error("webhook delivery refused for good (attempt %d): %s", attempt, exc)
        return "refused"
    except webhooks.RetryableDelivery as exc:
        if self.request.retries >= endpoint["max_retries"]:
            log.error("webhook delivery failed after %d attempts, event dropped: %s", attempt, exc)
            return "failed"
        delay = webhooks.backoff(endpoint, self.request.retries)
        log.warning("webhook delivery attempt %d failed, retrying in %.1f s: %s", attempt, delay, exc)
        raise self.retry(countdown=delay, max_retries=None)
    log.info("webhook delivered to %s (%d, attempt %d)", redact(url), status, attempt)
    return "delivered"
