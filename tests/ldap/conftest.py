"""One real slapd for the whole session (tests/ldap_server.py); tests that stop a directory start their own."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.ldap_server import Slapd, run_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with run_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server
