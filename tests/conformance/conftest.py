"""Fixtures of the conformance cases: the suite's data and a client of the admin ``/v2/``."""
from __future__ import annotations

import pytest

from tests.conformance.suite import Registry, SuiteData


@pytest.fixture
def data() -> SuiteData:
    return SuiteData()


@pytest.fixture
def reg(client, auth) -> Registry:
    return Registry(client, auth)
