"""Fixtures of the read-only maintenance tests: the push helpers of tests/registry, the REST helpers."""
from __future__ import annotations

from tests.registry.conftest import Pusher, Snapshot, push, snapshot  # noqa: F401 - fixtures and helpers
