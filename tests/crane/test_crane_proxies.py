"""X-Forwarded-Proto/Host from trusted proxies shape every URL Crane builds; untrusted ones are ignored."""
from __future__ import annotations

import pytest

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example.com"}


@pytest.fixture
def published(publisher):
    repo = publisher.repository("my/app")
    for tag in ("a", "b", "c"):
        image = publisher.image(repo, tag)
    publisher.publish(repo)
    secret = publisher.repository("secret/app", protected=True)
    publisher.image(secret, "latest")
    publisher.publish(secret)
    return image


@pytest.mark.parametrize("trusted, base", [(1, "https://registry.example.com"), (0, "http://localhost")])
def test_a_redirect_to_a_content_path_uses_the_forwarded_scheme_and_host_only_from_trusted_proxies(
        make_crane, published, trusted, base):
    crane = make_crane(trusted_proxies=trusted, blob_serving="redirect", blob_url_prefix="/content/")
    digest, _ = published.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}", headers=FORWARDED)
    assert response.status_code == 307
    assert response.headers["Location"] == f"{base}/content/sha256/{digest.split(':', 1)[1]}"


def test_an_absolute_content_url_is_left_as_configured(make_crane, published):
    crane = make_crane(trusted_proxies=1, blob_serving="redirect", blob_url_prefix="https://cdn.example.net/b")
    digest, _ = published.layers[0]
    location = crane.get(f"/v2/my/app/blobs/{digest}", headers=FORWARDED).headers["Location"]
    assert location.startswith("https://cdn.example.net/b/sha256/")


@pytest.mark.parametrize("trusted, base", [(1, "https://registry.example.com"), (0, "http://localhost")])
@pytest.mark.parametrize("realm, path", [("/auth/token", "/auth/token"), ("", "/token")])
def test_a_relative_token_realm_uses_the_forwarded_scheme_and_host(make_crane, token_auth, published, trusted,
                                                                    base, realm, path):
    crane = make_crane(trusted_proxies=trusted, token_realm=realm, **token_auth)
    challenge = crane.get("/v2/secret/app/manifests/latest", headers=FORWARDED).headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="{base}{path}"')


def test_with_two_trusted_proxies_the_outer_proxys_values_count(make_crane, token_auth, published):
    crane = make_crane(trusted_proxies=2, token_realm="/token", **token_auth)
    headers = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "registry.example.com, crane.internal"}
    challenge = crane.get("/v2/secret/app/manifests/latest", headers=headers).headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="https://registry.example.com/token"')


def test_link_headers_are_host_relative_so_no_forwarded_value_can_bend_them(make_crane, published):
    """Distribution sends a path in ``Link``; there is no scheme or host in it to get wrong."""
    for trusted in (0, 1):
        link = make_crane(trusted_proxies=trusted).get("/v2/my/app/tags/list?n=1", headers=FORWARDED).headers["Link"]
        assert link == '</v2/my/app/tags/list?last=a&n=1>; rel="next"'
