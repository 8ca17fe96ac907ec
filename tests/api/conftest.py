"""Fixtures of the REST API tests."""
from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def create_repo(client, auth):
    """POST a repository and return its JSON (asserting 201)."""

    def create(name: str = "my/app", **fields: Any) -> dict[str, Any]:
        response = client.post("/pulp/api/v2/repositories/", json={"name": name, **fields}, headers=auth)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return create
