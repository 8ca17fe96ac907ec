"""``/pulp/api/v2/status/`` (is the admin side healthy) and the OpenAPI document of the REST API."""
from __future__ import annotations

import functools
import importlib.metadata
import json
import threading
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint
from werkzeug.wrappers import Response

from pulp_registry.access import auth_required
from pulp_registry.api.responses import json_response
from pulp_registry.public_urls import crane_base_url, public_pull_host
from pulp_registry.worker_heartbeats import live_workers

blueprint = Blueprint("api_status", __name__)

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
#: Seconds the status call waits for the broker before it reports it unreachable.
BROKER_CHECK_TIMEOUT = 1.5


def platform_version() -> str:
    try:
        return importlib.metadata.version("pulp-registry")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def broker_connected(broker_url: str, timeout: float = BROKER_CHECK_TIMEOUT) -> bool:
    """Whether the broker accepts a connection within ``timeout`` seconds; never blocks longer."""
    if broker_url.startswith("memory://"):
        return True
    outcome: dict[str, bool] = {"connected": False}

    def check() -> None:
        from kombu import Connection

        try:
            with Connection(broker_url, connect_timeout=timeout) as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
                outcome["connected"] = True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            outcome["connected"] = False

    # The check runs in a daemon thread so a broker that swallows packets cannot hang the request.
    thread = threading.Thread(target=check, name="broker-status-check", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome["connected"] and not thread.is_alive()


def known_workers(db: Any) -> list[dict[str, Any]]:
    """Workers heard from recently (each records a heartbeat while it runs)."""
    try:
        return live_workers(db)
    except Exception:  # noqa: BLE001 - the status call reports what it can
        return []


def status_report(services: Any) -> dict[str, Any]:
    from pulp_registry.api.health import operations_report, readiness_for

    connected = readiness_for(services).results()   # bounded in time, shared with /readyz
    return {
        "api_version": "2",
        "versions": {"platform_version": platform_version()},
        "version": platform_version(),
        "database": {"connected": connected["database"]},
        "messaging": {"connected": connected["broker"]},   # the Celery broker
        "known_workers": known_workers(services.db) if connected["database"] else [],
        **operations_report(services, connected),
        "pull_host": public_pull_host(services.settings),
        "pull_url": crane_base_url(services.settings),
    }


@blueprint.get("/status/")
@auth_required(None)
def show_status() -> Response:
    """Any logged-in user may see whether the registry is healthy (and where to pull from)."""
    from pulp_registry.services import current_services

    return json_response(status_report(current_services()))


@functools.lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI_PATH.read_text())


# The API description is public on purpose: clients and people read it before they have credentials.
@blueprint.get("/openapi.yaml")
def openapi_yaml() -> Response:
    return Response(OPENAPI_PATH.read_text(), mimetype="application/yaml")


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    return Response(json.dumps(openapi_document(), indent=2), mimetype="application/json")
