"""``tests.worker_process`` with Redis's ``visibility_timeout`` cut to a few seconds, for the kill test.

A message a killed worker held (a webhook delivery waiting for its retry) goes back to the queue once
this timeout has passed, at the next sweep (every second here); Redis's default is an hour and a sweep every
100 s (RabbitMQ returns it as soon as the connection drops).

Run: ``python -m tests.webhooks.webhook_worker [pulp-registry worker arguments]``.
"""
from __future__ import annotations

from typing import Any

VISIBILITY_TIMEOUT = 3


def main() -> None:
    import pulp_registry.cli  # noqa: F401 - first: its start-up check looks for kombu before Celery loads it
    import workers.app as celery_apps

    create_celery_app = celery_apps.create_celery_app

    def with_short_visibility(settings: Any, **overrides: Any) -> Any:
        app = create_celery_app(settings, **overrides)
        app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT,
                                             "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
        return app

    celery_apps.create_celery_app = with_short_visibility  # build_process_services looks it up when called
    from tests.worker_process import main as worker_main

    worker_main()


if __name__ == "__main__":
    main()
