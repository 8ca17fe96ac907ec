"""Users with different rights, made through the real API functions."""
from __future__ import annotations

from typing import Callable

import pytest

from pulp_registry import permissions, roles, users
from tests.conftest import basic_auth


@pytest.fixture
def make_user(services) -> Callable[..., dict[str, str]]:
    """Create a local user holding ``roles`` (made if missing); answer their Basic credentials."""

    def make(login: str, *role_names: str) -> dict[str, str]:
        for name in role_names:
            if roles.get_role(services.db, name) is None:
                roles.create_role(services.db, name)
        users.create_user(services.db, login, f"{login}-secret-pw", roles=list(role_names), rounds=4)
        return basic_auth(login, f"{login}-secret-pw")

    return make


@pytest.fixture
def grant(services) -> Callable[[str, str, str], None]:
    def give(role: str, resource: str, operations: str) -> None:
        if roles.get_role(services.db, role) is None:
            roles.create_role(services.db, role)
        permissions.grant(services.db, permissions.ROLE, role, resource, operations.split(","))

    return give
