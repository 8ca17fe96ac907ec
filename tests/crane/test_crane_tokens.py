"""Bearer tokens (Docker registry token format) verified with the public key alone; anonymous pull off.

Tokens are minted here the way a token server mints them: a JWT signed with
the issuer's private key (RSA or EC, made by the test) carrying the ``access``
claim of distribution's token spec.
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

from crane.config import CraneSettings
from crane.tokens import Grant, InvalidToken, TokenVerifier, bearer_token, load_public_key, parse_access
from pulp_registry.config import ConfigError
from tests.crane.conftest import error_code

ISSUER = "pulp-registry-token-issuer"
SERVICE = "registry.example.com"
REALM = "https://auth.example.com/token"


def write_public_key(key: Any, path: Path) -> str:
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(path)


class Issuer:
    """A token server's signing half: mints tokens for the key the test made."""

    def __init__(self, key: Any, algorithm: str) -> None:
        self.key, self.algorithm = key, algorithm

    def token(self, access: list[dict[str, Any]] | None = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": ISSUER, "sub": "alice", "aud": SERVICE, "iat": now, "nbf": now, "exp": now + 300,
                   "jti": f"jti-{now}", "access": access or []}
        payload.update(claims)
        payload = {key: value for key, value in payload.items() if value is not None}
        return jwt.encode(payload, self.key, algorithm=self.algorithm)

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
        CraneSettings(token_public_key=str(tmp_path / "nowhere.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigError, match="token_public_key.*garbage.pem"):
        CraneSettings(token_public_key=str(garbage))


def test_anonymous_pull_off_needs_a_public_key_to_accept_tokens(public_key_file):
    with pytest.raises(ConfigError, match="token_public_key"):
        CraneSettings(anonymous_pull=False)
    assert CraneSettings(anonymous_pull=False, token_public_key=public_key_file).anonymous_pull is False


def test_anonymous_pull_can_be_turned_off_from_the_environment(public_key_file):
    from crane.config import load_crane_settings

    settings = load_crane_settings({"CRANE_ANONYMOUS_PULL": "false", "CRANE_TOKEN_PUBLIC_KEY": public_key_file,
                                    "CRANE_TOKEN_ISSUER": ISSUER})
    assert (settings.anonymous_pull, settings.token_issuer) == (False, ISSUER)


# --- the verifier as a plain object -----------------------------------------------------

def test_the_verifier_answers_what_a_token_may_pull(issuer, public_key_file):
    verifier = TokenVerifier(load_public_key(public_key_file), ISSUER, SERVICE)
    grant = verifier.verify(issuer.token([
        {"type": "repository", "name": "a/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "b/app", "actions": ["*"]},
        {"type": "repository", "name": "c/app", "actions": ["push"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]))
    assert grant.subject == "alice"
    assert grant.pullable() == {"a/app", "b/app"}
    assert grant.may_pull("b/app") and not grant.may_pull("c/app") and not grant.may_pull("a/app/x")
    assert grant.allows("registry", "catalog", "*")


@pytest.mark.parametrize("change, reason", [
    ({"exp": int(time.time()) - 3600}, "(?i)expired"),
    ({"nbf": int(time.time()) + 3600}, "(?i)not yet valid"),
    ({"iss": "someone-else"}, "(?i)issuer"),
    ({"aud": "another-registry"}, "(?i)audience"),
    ({"exp": None}, "exp"),
])
def test_the_verifier_refuses_tokens_out_of_time_or_for_someone_else(issuer, public_key_file, change, reason):
    verifier = TokenVerifier(load_public_key(public_key_file), ISSUER, SERVICE)
    with pytest.raises(InvalidToken, match=reason):
        verifier.verify(issuer.pull("a/app", **change))


def test_the_verifier_tolerates_small_clock_skew(issuer, public_key_file):
    verifier = TokenVerifier(load_public_key(public_key_file), ISSUER, SERVICE)
    assert verifier.verify(issuer.pull("a/app", exp=int(time.time()) - 10)).may_pull("a/app")


def test_the_verifier_refuses_forged_tokens(issuer, public_key_file):
    verifier = TokenVerifier(load_public_key(public_key_file), ISSUER, SERVICE)
    stranger = Issuer(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")
    with pytest.raises(InvalidToken):
        verifier.verify(stranger.pull("a/app"))
    unsigned = jwt.encode({"iss": ISSUER, "aud": SERVICE, "exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(InvalidToken):
        verifier.verify(unsigned)
    with pytest.raises(InvalidToken):
        verifier.verify("not.a.token")
    with pytest.raises(InvalidToken, match="access"):
        verifier.verify(issuer.token(access="repository:a/app:pull"))   # type: ignore[arg-type]


def test_es256_tokens_verify_with_an_ec_public_key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier(load_public_key(write_public_key(key, tmp_path / "ec.pem")), ISSUER, SERVICE)
    assert verifier.verify(Issuer(key, "ES256").pull("a/app")).may_pull("a/app")


def test_parse_access_and_bearer_token_are_plain_functions():
    assert parse_access([{"type": "repository", "name": "x", "actions": ["pull"]},
                         {"type": "repository", "name": "x", "actions": ["push"]}]) == \
        {("repository", "x"): frozenset({"pull", "push"})}
    assert Grant("bob", parse_access(None)).pullable() == frozenset()
    assert bearer_token("Bearer abc.def") == "abc.def"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic dXNlcjpwYXNz") is None and bearer_token(None) is None and bearer_token("Bearer") is None


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
    for token in (issuer.pull("secret/app", exp=int(time.time()) - 3600), "garbage"):
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
