"""The admin-side services a worker process uses, set once by whoever starts the worker."""
from __future__ import annotations

from pulp_registry.services import Services

_services: Services | None = None


def set_services(services: Services) -> None:
    global _services
    _services = services


def get_services() -> Services:
    if _services is None:
        raise RuntimeError("worker services are not configured; start workers with `pulp-registry worker`")
    return _services
