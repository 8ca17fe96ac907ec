"""Fixtures of the backup tests: a registry with content (services on mongomock) and an empty second install."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from bson import Binary, ObjectId

from pulp_registry.config import Settings
from pulp_registry.publish import publish_repository
from pulp_registry.services import Services, build_services
from tests.mongo_rules import CheckingClient
from tests.publish.sample_content import make_repository, push_image

#: A document holding the BSON types a JSON dump would lose: it must come back exactly.
PROBE = {"_id": "backup-probe", "when": datetime(2026, 11, 30, 12, 34, 56, 789000, tzinfo=timezone.utc),
         "binary": Binary(b"\x00\x01\xff" * 10, 0), "uuid": Binary(b"0123456789abcdef", 4),
         "object_id": ObjectId("656565656565656565656565"), "big": 2 ** 40, "ratio": 0.1}


@dataclass
class Pushed:
    """What the ``filled`` registry holds."""

    repos: dict[str, dict[str, Any]]
    manifests: dict[str, bytes]


@pytest.fixture
def filled(services: Services) -> Pushed:
    """Two published repositories sharing a layer, a second tag, and the probe document."""
    app = make_repository(services, "team/app")
    base = make_repository(services, "base")
    shared = b"shared layer " * 500
    manifests = {}
    for repo, tag, layers in ((app, "v1", [shared, b"app layer v1"]), (app, "v2", [shared, b"app layer v2"]),
                              (base, "latest", [shared])):
        digest, raw = push_image(services, repo, tag, layers)
        manifests[digest] = raw
    for repo in (app, base):
        publish_repository(services, repo["_id"])
    services.db.system.insert_one(dict(PROBE))
    return Pushed({"team/app": app, "base": base}, manifests)


def empty_install(root: Path) -> Services:
    """A second, empty install: its own data dir and its own in-memory database."""
    settings = Settings(data_dir=str(root), mongo_url="mongomock://", mongo_database="restored",
                        broker_url="memory://", bcrypt_rounds=4)
    return build_services(settings, mongo_client=CheckingClient())


@pytest.fixture
def target(tmp_path: Path) -> Services:
    return empty_install(tmp_path / "target")
