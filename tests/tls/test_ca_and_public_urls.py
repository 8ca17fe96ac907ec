"""``/ca.crt`` on both sides without login, and the URLs the admin side hands out behind proxies.

A client's own ``X-Forwarded-*`` headers must change no URL unless
``trusted_proxies`` says a proxy sets them; ``api_public_url`` and
``crane_public_url`` fix the URLs whatever the request says.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crane.app import create_app as create_crane_app
from crane.config import CraneSettings
from pulp_registry.certs import init_certificates
from pulp_registry.config import ConfigError, Settings

FORGED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"}
CA_TYPES = ("application/x-x509-ca-cert", "application/pkix-cert")


@pytest.fixture
def settings(tmp_path: Path, request) -> Settings:
    """The shared fixture's settings with this test's overrides (``indirect`` parametrization)."""
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://",
                    bcrypt_rounds=4, credential_cache_seconds=0, **getattr(request, "param", {}))


def with_settings(**overrides):
    return pytest.mark.parametrize("settings", [overrides], indirect=True)


# --- /ca.crt on the admin side -----------------------------------------------------------------

def test_admin_ca_crt_is_404_in_json_when_no_ca_exists(client):
    response = client.get("/ca.crt")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"
    assert "ca_certificate" in response.get_json()["message"]


def test_admin_serves_the_ca_made_under_the_data_dir_without_login(client, settings):
    paths = init_certificates(Path(settings.data_dir) / "certs", ["localhost"])
    response = client.get("/ca.crt")
    assert response.status_code == 200
    assert response.mimetype in CA_TYPES
    assert response.data == paths.ca_certificate.read_bytes()
    assert b"PRIVATE KEY" not in response.data
    assert client.head("/ca.crt").status_code == 200


def test_admin_serves_the_configured_ca_certificate_setting(tmp_path, services, app):
    paths = init_certificates(tmp_path / "elsewhere", ["localhost"])
    services.settings = dataclasses.replace(services.settings, ca_certificate=str(paths.ca_certificate))
    response = app.test_client().get("/ca.crt")
    assert response.status_code == 200
    assert response.data == paths.ca_certificate.read_bytes()


# --- /ca.crt on Crane --------------------------------------------------------------------------

def crane_client(tmp_path: Path, **settings):
    return create_crane_app(CraneSettings(data_dir=str(tmp_path / "published"), **settings)).test_client()


def test_crane_serves_its_ca_certificate_setting_without_a_token(tmp_path):
    paths = init_certificates(tmp_path / "certs", ["localhost"])
    public_key = tmp_path / "token.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    public_key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    client = crane_client(tmp_path, ca_certificate=str(paths.ca_certificate), token_public_key=str(public_key),
                          token_issuer="issuer", token_service="service", anonymous_pull=False)
    assert client.get("/v2/").status_code == 401   # token auth is on ...
    response = client.get("/ca.crt")                # ... and the CA is still public
    assert response.status_code == 200
    assert response.mimetype in CA_TYPES
    assert response.data == paths.ca_certificate.read_bytes()


def test_crane_ca_crt_is_404_in_the_registry_error_form_without_a_ca(tmp_path):
    response = crane_client(tmp_path).get("/ca.crt")
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["message"].startswith("no CA certificate is configured")


def test_crane_ca_crt_is_404_when_the_configured_file_is_missing(tmp_path):
    assert crane_client(tmp_path, ca_certificate=str(tmp_path / "gone.crt")).get("/ca.crt").status_code == 404


# --- forwarded headers and public URLs on the admin side ---------------------------------------

def start_upload(client, auth, headers=None):
    response = client.post("/v2/my/app/blobs/uploads/", headers={**auth, **(headers or {})})
    assert response.status_code == 202, response.data
    return response.headers["Location"]


def realm(client, headers=None) -> str:
    response = client.get("/v2/", headers=headers or {})
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    return challenge.split('realm="', 1)[1].split('"', 1)[0]


def test_forged_forwarded_headers_change_no_url_without_trusted_proxies(client, auth):
    assert start_upload(client, auth, FORGED).startswith("/v2/my/app/blobs/uploads/")
    assert realm(client, FORGED) == "http://localhost/token"


@with_settings(trusted_proxies=1)
def test_forwarded_headers_of_a_trusted_proxy_shape_the_realm(client, auth):
    assert realm(client, FORGED) == "https://evil.example:8443/token"
    assert realm(client) == "http://localhost/token"
    assert start_upload(client, auth, FORGED).startswith("/v2/my/app/blobs/uploads/")  # relative: same host


@with_settings(trusted_proxies=1)
def test_a_trusted_proxy_gives_the_client_address_to_the_login_limits(app):
    from flask import request

    @app.get("/test-remote-addr")
    def remote_addr():
        return request.remote_addr or ""

    response = app.test_client().get("/test-remote-addr", headers={"X-Forwarded-For": "198.51.100.7"},
                                     environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert response.text == "198.51.100.7"


@pytest.mark.parametrize("settings", [{"api_public_url": "https://registry.example.com:8443/", "trusted_proxies": 0},
                                      {"api_public_url": "https://registry.example.com:8443/", "trusted_proxies": 1}],
                         indirect=True)
def test_api_public_url_is_the_base_of_locations_and_of_the_realm_whatever_the_headers(client, auth):
    location = start_upload(client, auth, FORGED)
    assert location.startswith("https://registry.example.com:8443/v2/my/app/blobs/uploads/")
    assert realm(client, FORGED) == "https://registry.example.com:8443/token"


@with_settings(api_public_url="https://registry.example.com", token_realm="https://auth.example.com/token")
def test_an_explicit_token_realm_wins_over_api_public_url(client):
    assert realm(client, FORGED) == "https://auth.example.com/token"


@with_settings(api_public_url="https://registry.example.com")
def test_manifest_and_blob_locations_use_api_public_url(client, auth):
    import hashlib
    import json

    data = b"{}"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = client.post(f"/v2/my/app/blobs/uploads/?digest={digest}", data=data, headers=auth)
    assert response.status_code == 201, response.data
    assert response.headers["Location"] == f"https://registry.example.com/v2/my/app/blobs/{digest}"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest,
                                      "size": len(data)}, "layers": []}).encode()
    response = client.put("/v2/my/app/manifests/v1", data=manifest,
                          headers={**auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert response.status_code == 201, response.data
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert response.headers["Location"] == f"https://registry.example.com/v2/my/app/manifests/{manifest_digest}"


def test_status_names_pull_host_and_its_url_by_default(client, auth, settings):
    status = client.get("/pulp/api/v2/status/", headers=auth).get_json()
    assert status["pull_host"] == settings.pull_host
    assert status["pull_url"] == f"http://{settings.pull_host}"


@with_settings(crane_public_url="https://pull.example.com")
def test_status_names_the_host_of_crane_public_url_as_where_to_pull(client, auth):
    status = client.get("/pulp/api/v2/status/", headers={**auth, **FORGED}).get_json()
    assert status["pull_host"] == "pull.example.com"
    assert status["pull_url"] == "https://pull.example.com"


@pytest.mark.parametrize("key", ["api_public_url", "crane_public_url"])
@pytest.mark.parametrize("value", ["registry.example.com", "ftp://registry.example.com", "https://r.example/v2",
                                   "https://r.example?x=1", "https://user:pw@r.example", "https://r.example:0",
                                   "https://"])
def test_public_urls_must_be_scheme_host_and_port_only(key, value):
    with pytest.raises(ConfigError, match=key):
        Settings(**{key: value})


def test_public_urls_lose_a_trailing_slash():
    settings = Settings(api_public_url="https://r.example:8443/", crane_public_url="http://pull.example/")
    assert (settings.api_public_url, settings.crane_public_url) == ("https://r.example:8443", "http://pull.example")


@pytest.mark.parametrize("cls", [Settings, CraneSettings])
@pytest.mark.parametrize("given", ["tls_certificate", "tls_key"])
def test_a_tls_certificate_without_its_key_or_the_reverse_is_refused(cls, given):
    with pytest.raises(ConfigError, match="set both to serve TLS"):
        cls(**{given: "/some/file.pem"})


def test_negative_trusted_proxies_is_refused():
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Settings(trusted_proxies=-1)
