"""Health tests reuse Crane's in-process harness (tests/crane/conftest.py): a tree written by the real publisher."""
from __future__ import annotations

from tests.crane.conftest import make_crane, publisher  # noqa: F401 - fixtures shared with tests/crane
