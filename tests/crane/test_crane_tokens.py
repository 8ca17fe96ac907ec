"""Bearer tokens (Docker registry token format) verified by Crane with the issuer's public keys alone.

Tokens are minted here the way a token server mints them: a JWT signed with
the issuer's private key (RSA or EC, made by the test) carrying the ``access``
claim of distribution's token spec, and the key's fingerprint as ``kid``.
The token format's own checks are tested with its owner, in tests/tokens.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from crane.config import CraneSettings, load_crane_settings
from crane.tokens import load_trusted_keys, verifier_for
from pulp_registry.config import ConfigError
from pulp_registry.registry_tokens import key_id
from tests.crane.conftest import error_code

ISSUER = "pulp-registry-token-issuer"
SERVICE = "registry.example.com"
REALM = "https://auth.example.com/token"


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_public_key(key: Any, path: Path) -> str:
    path.write_bytes(public_pem(key))
    return str(path)


class Issuer:
    """A token server's signing half: mints tokens for the key the test made."""

    def __init__(self, key: Any, algorithm: str, with_kid: bool = True) -> None:
        self.key, self.algorithm = key, algorithm
        self.headers = {"kid": key_id(key.public_key())} if with_kid else None

    def token(self, access: list[dict[str, Any]] | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": "alice", "aud": SERVICE, "iat": now, "nbf": now, "exp": now + 300,
                   "jti": f"jti-{now}", "access": access or []}
        payload.update(claims)
        payload = {key: value for key, value in payload.items() if value is not None}
        return jwt.encode(payload, self.key, algorithm=self.algorithm, headers=self.headers)

    def pull(self, *names: str, actions: tuple[str, ...] = ("pull",), **claims: Any) -> str:
        return self.token([{"type": "repository", "name": name, "actions": list(actions)} for name in names],
                          **claims)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer(rsa_key) -> Issuer:
    return Issuer(rsa_key, "RS256")


@pytest.fixture
def public_key_file(rsa_key, tmp_path) -> str:
    return write_public_key(rsa_key, tmp_path / "token-issuer.pem")


@pytest.fixture
def token_settings(public_key_file) -> dict[str, Any]:
    return {"token_public_key": public_key_file, "token_issuer": ISSUER, "token_service": SERVICE,
            "token_realm": REALM}


@pytest.fixture
def published(publisher):
    images = {}
    for name, protected in (("public/app", False), ("secret/app", True), ("other/secret", True)):
        repo = publisher.repository(name, protected=protected)
        images[name] = publisher.image(repo, "latest")
        publisher.publish(repo)
    return images


# --- configuration -------------------------------------------------------------------

def test_a_missing_or_unreadable_public_key_is_named_at_start_up(tmp_path):
    with pytest.raises(ConfigError, match="token_public_key.*nowhere.pem"):
        CraneSettings(token_public_key=str(tmp_path / "nowhere.pem"), token_issuer=ISSUER, token_service=SERVICE)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="token_public_key.*garbage.pem"):
        CraneSettings(token_public_key=str(garbage), token_issuer=ISSUER, token_service=SERVICE)


def test_anonymous_pull_off_or_a_token_realm_needs_a_public_key_to_accept_tokens(public_key_file):
    with pytest.raises(ConfigError, match="token_public_key: required when anonymous_pull is off"):
        CraneSettings(anonymous_pull=False)
    with pytest.raises(ConfigError, match="token_public_key: required when token_realm is set"):
        CraneSettings(token_realm=REALM)
    settings = CraneSettings(anonymous_pull=False, token_public_key=public_key_file, token_issuer=ISSUER,
                             token_service=SERVICE)
    assert settings.anonymous_pull is False and settings.token_auth


@pytest.mark.parametrize("missing", ["token_issuer", "token_service"])
def test_token_auth_needs_the_issuer_and_the_service_and_names_the_missing_one(public_key_file, missing):
    settings = {"token_public_key": public_key_file, "token_issuer": ISSUER, "token_service": SERVICE}
    del settings[missing]
    with pytest.raises(ConfigError, match=f"^{missing}: required when token_public_key is set"):
        CraneSettings(**settings)


def test_redirected_blobs_are_refused_with_token_auth(token_settings):
    with pytest.raises(ConfigError, match="blob_serving: redirect cannot be used with token auth"):
        CraneSettings(blob_serving="redirect", blob_url_prefix="https://cdn.example.com/b", **token_settings)
    assert CraneSettings(blob_serving="x-accel-redirect", blob_url_prefix="/_blobs", **token_settings).token_auth


def test_token_auth_can_be_configured_from_the_environment(public_key_file):
    settings = load_crane_settings({"CRANE_ANONYMOUS_PULL": "false", "CRANE_TOKEN_PUBLIC_KEY": public_key_file,
                                    "CRANE_TOKEN_ISSUER": ISSUER, "CRANE_TOKEN_SERVICE": SERVICE})
    assert (settings.anonymous_pull, settings.token_issuer, settings.token_service) == (False, ISSUER, SERVICE)


def test_several_keys_come_from_a_comma_separated_list_and_from_several_blocks_in_one_file(tmp_path, rsa_key):
    ec_key, other_ec = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    first = write_public_key(rsa_key, tmp_path / "old.pem")
    bundle = tmp_path / "new.pem"
    bundle.write_bytes(public_pem(ec_key) + b"\n" + public_pem(other_ec))
    keys = load_trusted_keys(f"{first}, {bundle}")
    assert [key_id(key) for key in keys] == [key_id(k.public_key()) for k in (rsa_key, ec_key, other_ec)]
    assert CraneSettings(token_public_key=f"{first},{bundle}", token_issuer=ISSUER, token_service=SERVICE)


# --- rotation and the checks Crane applies ----------------------------------------------------

@pytest.fixture
def rotation(tmp_path, rsa_key):
    """The old RSA key and a new EC key, both trusted (two files), and an issuer for each."""
    new_key = ec.generate_private_key(ec.SECP256R1())
    files = [write_public_key(rsa_key, tmp_path / "old.pem"), write_public_key(new_key, tmp_path / "new.pem")]
    return {"old": Issuer(rsa_key, "RS256"), "new": Issuer(new_key, "ES256"), "files": files}


def test_while_keys_rotate_tokens_of_the_old_and_of_the_new_key_both_pull(make_crane, rotation, published):
    crane = make_crane(token_public_key=",".join(rotation["files"]), token_issuer=ISSUER, token_service=SERVICE,
                       token_realm=REALM)
    image = published["secret/app"]
    for issuer in (rotation["old"], rotation["new"], Issuer(rotation["new"].key, "ES256", with_kid=False)):
        response = crane.get("/v2/secret/app/manifests/latest", headers=bearer(issuer.pull("secret/app")))
        assert response.status_code == 200 and response.data == image.raw
    # Once the old key is dropped, its tokens are refused.
    crane = make_crane(token_public_key=rotation["files"][1], token_issuer=ISSUER, token_service=SERVICE,
                       token_realm=REALM)
    refused = crane.get("/v2/secret/app/manifests/latest", headers=bearer(rotation["old"].pull("secret/app")))
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert crane.get("/v2/secret/app/manifests/latest",
                     headers=bearer(rotation["new"].pull("secret/app"))).status_code == 200


@pytest.mark.parametrize("claims", [{"iss": "someone-else"}, {"aud": "another-registry"}, {"iss": None},
                                    {"aud": None}, {"exp": None}])
def test_a_token_for_another_issuer_or_audience_or_without_expiry_is_refused(make_crane, token_settings, issuer,
                                                                           published, claims):
    crane = make_crane(**token_settings)
    response = crane.get("/v2/secret/app/manifests/latest", headers=bearer(issuer.pull("secret/app", **claims)))
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("claims, accepted", [
    ({"exp": -20}, True), ({"exp": -40}, False),
    ({"nbf": 20}, True), ({"nbf": 40}, False),
    ({"iat": 20}, True), ({"iat": 40}, False),
])
def test_clocks_may_disagree_by_30_seconds_not_more(make_crane, token_settings, issuer, published, claims, accepted):
    crane = make_crane(**token_settings)
    (claim, offset), = claims.items()
    token = issuer.pull("secret/app", **{claim: int(time.time()) + offset})
    status = crane.get("/v2/secret/app/manifests/latest", headers=bearer(token)).status_code
    assert status == (200 if accepted else 401)


def test_the_verifier_crane_builds_checks_issuer_audience_and_every_configured_key(rotation):
    settings = CraneSettings(token_public_key=",".join(rotation["files"]), token_issuer=ISSUER, token_service=SERVICE)
    verifier = verifier_for(settings)
    assert verifier is not None and len(verifier.keys) == 2
    assert (verifier.issuer, verifier.audience) == (ISSUER, SERVICE)
    assert verifier_for(CraneSettings()) is None


# --- /v2/: the challenge that starts the token flow --------------------------------------------

def test_with_token_auth_v2_answers_401_with_a_challenge_until_a_valid_token_comes(make_crane, token_settings,
                                                                                 issuer, published):
    crane = make_crane(**token_settings)          # anonymous pull on
    response = crane.get("/v2/")
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}",service="{SERVICE}"'
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    anonymous = issuer.token(sub="")              # what the token server gives anyone: no access at all
    assert crane.get("/v2/", headers=bearer(anonymous)).status_code == 200
    assert crane.head("/v2/", headers=bearer(anonymous)).status_code == 200
    invalid = crane.get("/v2/", headers=bearer(issuer.token(exp=int(time.time()) - 3600)))
    assert invalid.status_code == 401 and invalid.headers["WWW-Authenticate"].endswith(',error="invalid_token"')
    assert crane.get("/").status_code == 200      # load balancer health stays open
    # Public pulls go on without a token, and with the anonymous one.
    for headers in ({}, bearer(anonymous)):
        assert crane.get("/v2/public/app/manifests/latest", headers=headers).data == published["public/app"].raw


def test_a_public_key_without_a_realm_challenges_on_v2_with_this_hosts_token_path(make_crane, public_key_file):
    crane = make_crane(token_public_key=public_key_file, token_issuer=ISSUER, token_service=SERVICE)
    response = crane.get("/v2/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="http://localhost/token",service="{SERVICE}"'


def test_without_token_auth_v2_answers_200_to_anyone(crane):
    response = crane.get("/v2/")
    assert response.status_code == 200 and json.loads(response.data) == {}


# --- protected repositories with tokens (anonymous pull on) ----------------------------------

def test_a_token_with_pull_on_a_protected_repository_pulls_it(make_crane, token_settings, issuer, published):
    crane = make_crane(**token_settings)
    image = published["secret/app"]
    headers = bearer(issuer.pull("secret/app"))
    response = crane.get("/v2/secret/app/manifests/latest", headers=headers)
    assert response.status_code == 200 and response.data == image.raw
    assert response.headers["Cache-Control"].startswith("private")
    layer_digest, layer = image.layers[0]
    assert crane.get(f"/v2/secret/app/blobs/{layer_digest}", headers=headers).data == layer
    assert json.loads(crane.get("/v2/secret/app/tags/list", headers=headers).data)["tags"] == ["latest"]
    star = bearer(issuer.pull("secret/app", actions=("*",)))
    assert crane.head("/v2/secret/app/manifests/latest", headers=star).status_code == 200
    plugin = bearer(issuer.token([{"type": "repository(plugin)", "name": "secret/app", "actions": ["pull"]}]))
    assert crane.get("/v2/secret/app/manifests/latest", headers=plugin).status_code == 200


def test_a_token_without_the_scope_is_401_insufficient_scope(make_crane, token_settings, issuer, published):
    crane = make_crane(**token_settings)
    for token in (issuer.pull("other/secret"), issuer.pull("secret/app", actions=("push",))):
        response = crane.get("/v2/secret/app/manifests/latest", headers=bearer(token))
        assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"] == (
            f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:secret/app:pull",'
            'error="insufficient_scope"')


def test_an_invalid_token_is_401_invalid_token(make_crane, token_settings, issuer, published):
    crane = make_crane(**token_settings)
    stranger = Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    for token in (issuer.pull("secret/app", exp=int(time.time()) - 3600), "garbage", stranger.pull("secret/app")):
        response = crane.get("/v2/secret/app/manifests/latest", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].endswith(',error="invalid_token"')


def test_without_a_public_key_no_token_is_accepted(make_crane, issuer, published):
    crane = make_crane()
    response = crane.get("/v2/secret/app/manifests/latest", headers=bearer(issuer.pull("secret/app")))
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_an_unprotected_repository_ignores_the_authorization_header(make_crane, token_settings, published):
    crane = make_crane(**token_settings)
    response = crane.get("/v2/public/app/manifests/latest", headers=bearer("garbage"))
    assert response.status_code == 200 and response.data == published["public/app"].raw


# --- hiding existence ----------------------------------------------------------------------

def test_with_token_auth_unknown_and_protected_names_answer_alike(make_crane, token_settings, issuer, published):
    crane = make_crane(**token_settings)
    protected = crane.get("/v2/secret/app/manifests/latest")
    unknown = crane.get("/v2/secret/nothing/manifests/latest")
    assert protected.status_code == unknown.status_code == 401
    assert json.loads(protected.data)["errors"][0]["code"] == json.loads(unknown.data)["errors"][0]["code"]
    assert unknown.headers["WWW-Authenticate"] == protected.headers["WWW-Authenticate"].replace(
        "secret/app", "secret/nothing")
    # Only a caller allowed to pull the name learns that it does not exist.
    response = crane.get("/v2/secret/nothing/tags/list", headers=bearer(issuer.pull("secret/nothing")))
    assert response.status_code == 404 and error_code(response) == "NAME_UNKNOWN"


def test_without_token_auth_unknown_is_name_unknown_and_protected_is_401(make_crane, published):
    crane = make_crane()
    assert error_code(crane.get("/v2/secret/nothing/manifests/latest")) == "NAME_UNKNOWN"
    assert crane.get("/v2/secret/app/manifests/latest").status_code == 401


# --- anonymous pull turned off ----------------------------------------------------------------

@pytest.fixture
def closed(make_crane, token_settings, published):
    return make_crane(anonymous_pull=False, **token_settings)


def test_v2_needs_a_valid_token_when_anonymous_pull_is_off(closed, issuer):
    response = closed.get("/v2/")
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}",service="{SERVICE}"'
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert closed.get("/v2/", headers=bearer(issuer.token())).status_code == 200
    assert closed.get("/v2/", headers=bearer(issuer.token(exp=int(time.time()) - 3600))).status_code == 401
    assert closed.get("/").status_code == 200          # load balancer health stays open


def test_unprotected_repositories_need_a_token_too_when_anonymous_pull_is_off(closed, issuer, published):
    response = closed.get("/v2/public/app/manifests/latest")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="{REALM}",service="{SERVICE}",scope="repository:public/app:pull"')
    unknown = closed.get("/v2/no/such/manifests/latest")
    assert unknown.status_code == 401      # unknown looks like everything else
    response = closed.get("/v2/public/app/manifests/latest", headers=bearer(issuer.pull("public/app")))
    assert response.status_code == 200 and response.data == published["public/app"].raw


def test_the_catalog_lists_only_what_the_caller_may_pull(make_crane, closed, token_settings, issuer, published):
    response = closed.get("/v2/_catalog")
    assert response.status_code == 401
    assert 'scope="registry:catalog:*"' in response.headers["WWW-Authenticate"]
    token = bearer(issuer.pull("secret/app", "public/app", "not/published"))
    assert json.loads(closed.get("/v2/_catalog", headers=token).data) == {"repositories": ["public/app", "secret/app"]}

    crane = make_crane(**token_settings)          # anonymous pull on
    assert json.loads(crane.get("/v2/_catalog").data) == {"repositories": ["public/app"]}
    token = bearer(issuer.pull("other/secret"))
    assert json.loads(crane.get("/v2/_catalog", headers=token).data) == {
        "repositories": ["other/secret", "public/app"]}
    paged = crane.get("/v2/_catalog?n=1", headers=token)
    assert json.loads(paged.data) == {"repositories": ["other/secret"]} and "Link" in paged.headers


def test_a_token_with_the_catalog_scope_lists_every_repository(closed, issuer, published):
    token = bearer(issuer.token([{"type": "registry", "name": "catalog", "actions": ["*"]}]))
    assert json.loads(closed.get("/v2/_catalog", headers=token).data) == {
        "repositories": ["other/secret", "public/app", "secret/app"]}
    # ... but pulls still need their own scope.
    assert closed.get("/v2/secret/app/manifests/latest", headers=token).status_code == 401
