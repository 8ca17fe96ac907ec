"""Protected repositories: no anonymous pull (401 with a Bearer challenge), not in the catalog."""
from __future__ import annotations

import json

import pytest

from tests.crane.conftest import error_code


@pytest.fixture
def secret(publisher, crane):
    repo = publisher.repository("secret/app", protected=True)
    image = publisher.image(repo, "latest")
    publisher.publish(repo)
    crane.tick()
    return image


@pytest.mark.parametrize("path", ["/v2/secret/app/manifests/latest", "/v2/secret/app/tags/list"])
def test_anonymous_pull_of_a_protected_repository_is_401_with_a_bearer_challenge(crane, secret, path):
    response = crane.get(path)
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert 'scope="repository:secret/app:pull"' in challenge
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_blobs_and_manifest_digests_of_a_protected_repository_are_401_too(crane, secret):
    for path in (f"/v2/secret/app/blobs/{secret.layers[0][0]}", f"/v2/secret/app/manifests/{secret.digest}"):
        assert crane.get(path).status_code == 401
        assert crane.head(path).status_code == 401


def test_the_challenge_names_the_configured_token_realm_and_service(make_crane, token_auth, secret):
    crane = make_crane(**{**token_auth, "token_realm": "https://auth.example.com/token",
                          "token_service": "registry.example.com"})
    challenge = crane.get("/v2/secret/app/manifests/latest").headers["WWW-Authenticate"]
    assert challenge == ('Bearer realm="https://auth.example.com/token",service="registry.example.com",'
                         'scope="repository:secret/app:pull"')


def test_protected_repositories_are_not_in_the_catalog(crane, secret):
    assert json.loads(crane.get("/v2/_catalog").data) == {"repositories": []}
