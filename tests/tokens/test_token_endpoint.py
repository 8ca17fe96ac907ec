"""``GET /token`` and ``POST /token`` with the Flask test client: who gets which token.

Users, roles and grants are made with the permission API (``users``,
``roles``, ``permissions``); every token is checked the way its users check
it: by the admin side's ``/v2/`` and by a verifier built like Crane's, with the
public key file alone.
"""
from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from crane.config import CraneSettings
from crane.tokens import verifier_for
from pulp_registry import permissions, roles
from pulp_registry.config import Settings
from pulp_registry.permissions import READ, ROLE, UPDATE, USER
from pulp_registry.registry_tokens import keys_for, verify_token
from pulp_registry.repositories import create_repository
from pulp_registry.users import create_user
from tests.conftest import ADMIN_LOGIN, ADMIN_PASSWORD, basic_auth

READER, READER_PASSWORD = "reader", "reader-password"
BUILDER, BUILDER_PASSWORD = "builder", "builder-password"


@pytest.fixture
def repositories(services) -> dict[str, dict[str, Any]]:
    return {name: create_repository(services.db, name, protected=protected)
            for name, protected in (("public/app", False), ("secret/app", True), ("other/secret", True))}


@pytest.fixture
def team(services, repositories) -> None:
    """``reader`` may read secret/app (through the role ``readers``); ``builder`` may also push to it."""
    db = services.db
    roles.create_role(db, "readers")
    secret = permissions.repository_resource(repositories["secret/app"]["_id"])
    permissions.grant(db, ROLE, "readers", secret, [READ])
    create_user(db, READER, READER_PASSWORD, roles=["readers"], rounds=4)
    create_user(db, BUILDER, BUILDER_PASSWORD, roles=["readers"], rounds=4)
    permissions.grant(db, USER, BUILDER, secret, [UPDATE])


def get_token(client, *scopes: str, auth: dict[str, str] | None = None, service: str | None = "pulp-registry",
              **params: str):
    query: list[tuple[str, str]] = [("service", service)] if service is not None else []
    query += [("scope", scope) for scope in scopes] + list(params.items())
    return client.get("/token", query_string=query, headers=auth or {})


def granted(services, response) -> dict[tuple[str, str], set[str]]:
    """What the token of a 200 response grants, verified with the issuer's key."""
    assert response.status_code == 200, response.get_data(as_text=True)
    subject, access = verify_token(keys_for(services), services.settings, response.get_json()["token"])
    return {resource: set(actions) for resource, actions in access.items()}


def subject_of(response) -> str:
    return jwt.decode(response.get_json()["token"], options={"verify_signature": False})["sub"]


# --- the response ------------------------------------------------------------------------------

def test_a_token_response_has_the_token_its_lifetime_and_issue_time_and_is_never_cached(client, services):
    before = int(time.time())
    response = get_token(client, "repository:public/app:pull")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == services.settings.token_lifetime
    issued = time.mktime(time.strptime(body["issued_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert before - 1 <= issued <= time.time() + 1
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256" and header["kid"] == keys_for(services).kid


def test_crane_verifies_the_token_with_the_public_key_file_alone(client, services, repositories):
    token = get_token(client, "repository:secret/app:pull", auth=basic_auth(ADMIN_LOGIN, ADMIN_PASSWORD))
    settings = services.settings
    crane = CraneSettings(token_public_key=settings.token_public_key, token_issuer=settings.token_issuer,
                          token_service=settings.token_service, token_realm="http://127.0.0.1:8080/token")
    grant = verifier_for(crane).verify(token.get_json()["token"])
    assert grant.subject == ADMIN_LOGIN and grant.may_pull("secret/app") and not grant.may_pull("other/secret")


def test_the_admin_v2_accepts_the_token_it_issued(client, services, repositories):
    token = get_token(client, "repository:public/app:pull").get_json()["token"]
    assert client.get("/v2/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- anonymous callers --------------------------------------------------------------------------

def test_anonymous_callers_get_pull_on_unprotected_repositories_only(client, services, repositories):
    response = get_token(client, "repository:public/app:pull,push", "repository:secret/app:pull",
                         "repository:nowhere/app:pull", "registry:catalog:*")
    assert granted(services, response) == {("repository", "public/app"): {"pull"}}
    assert subject_of(response) == ""


def test_with_anonymous_pull_off_anonymous_callers_get_an_empty_token(client, services, repositories):
    services.settings = Settings(**{**services.settings.__dict__, "anonymous_pull": False})
    response = get_token(client, "repository:public/app:pull")
    assert granted(services, response) == {}


def test_a_request_without_scope_gets_a_token_without_access(client, services):
    """What ``docker login`` asks for: a token proving the credentials, for ``/v2/``."""
    assert granted(services, get_token(client)) == {}
    response = get_token(client, auth=basic_auth(ADMIN_LOGIN, ADMIN_PASSWORD), account=ADMIN_LOGIN,
                         client_id="docker", offline_token="true")
    assert granted(services, response) == {} and subject_of(response) == ADMIN_LOGIN
    assert "refresh_token" not in response.get_json()


# --- users and their roles -----------------------------------------------------------------------

def test_a_user_gets_what_their_roles_allow_and_never_more_than_asked(client, services, team):
    reader = basic_auth(READER, READER_PASSWORD)
    response = get_token(client, "repository:secret/app:pull,push", "repository:other/secret:pull",
                         "repository:public/app:pull", "registry:catalog:*", auth=reader)
    assert granted(services, response) == {("repository", "secret/app"): {"pull"},
                                           ("repository", "public/app"): {"pull"}}
    assert subject_of(response) == READER
    builder = basic_auth(BUILDER, BUILDER_PASSWORD)
    assert granted(services, get_token(client, "repository:secret/app:pull,push", auth=builder)) == {
        ("repository", "secret/app"): {"pull", "push"}}
    assert granted(services, get_token(client, "repository:secret/app:push", auth=builder)) == {
        ("repository", "secret/app"): {"push"}}
    assert granted(services, get_token(client, "repository:secret/app:delete", auth=builder)) == {}


def test_a_super_user_gets_everything_asked_for_and_only_that(client, services, repositories):
    admin = basic_auth(ADMIN_LOGIN, ADMIN_PASSWORD)
    assert granted(services, get_token(client, "repository:secret/app:pull", auth=admin)) == {
        ("repository", "secret/app"): {"pull"}}
    assert granted(services, get_token(client, "repository:secret/app:*", "registry:catalog:*", auth=admin)) == {
        ("repository", "secret/app"): {"pull", "push", "delete"}, ("registry", "catalog"): {"*"}}
    # A push to a repository that does not exist yet creates it: push is granted on the new name.
    assert granted(services, get_token(client, "repository:new/app:pull,push", auth=admin)) == {
        ("repository", "new/app"): {"pull", "push"}}


def test_scopes_may_come_space_separated_and_malformed_ones_or_invalid_names_are_ignored(client, services, team):
    reader = basic_auth(READER, READER_PASSWORD)
    response = get_token(client, "repository:secret/app:pull repository:public/app:pull",
                         "repository:Not/A/Valid/NAME:pull", "repository:../etc:pull", "nonsense",
                         "repository(plugin):public/app:pull", "repository:secret/app:fly", auth=reader)
    assert granted(services, response) == {("repository", "secret/app"): {"pull"},
                                           ("repository", "public/app"): {"pull"}}


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("service, code", [("another-registry", "BAD_TOKEN_OPTION"),
                                           (None, "MISSING_REQUIRED_FIELD")])
def test_a_token_for_another_service_is_400(client, service, code):
    response = get_token(client, "repository:public/app:pull", service=service)
    assert response.status_code == 400
    error = response.get_json()["errors"][0]
    assert error["code"] == code and "pulp-registry" in error["message"]


def test_a_wrong_password_or_unknown_user_is_401_with_a_basic_challenge(client, team):
    for auth in (basic_auth(READER, "wrong"), basic_auth("nobody", READER_PASSWORD)):
        response = get_token(client, "repository:secret/app:pull", auth=auth)
        assert response.status_code == 401
        assert response.get_json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_an_account_other_than_the_login_sent_is_400(client, team):
    response = get_token(client, auth=basic_auth(READER, READER_PASSWORD), account=BUILDER)
    assert response.status_code == 400 and response.get_json()["errors"][0]["code"] == "BAD_TOKEN_OPTION"
    assert get_token(client, account="anyone").status_code == 200      # anonymous: nothing to compare


def test_a_registry_token_cannot_be_exchanged_for_another(client, repositories):
    token = get_token(client, "repository:public/app:pull").get_json()["token"]
    response = get_token(client, "repository:secret/app:pull", auth={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


# --- OAuth2's POST ------------------------------------------------------------------------------

def post_token(client, **form: str):
    fields = {"grant_type": "password", "service": "pulp-registry", "client_id": "docker", **form}
    return client.post("/token", data={key: value for key, value in fields.items() if value is not None})


def test_post_with_the_password_grant_answers_the_token_and_the_scope_granted(client, services, team):
    response = post_token(client, username=READER, password=READER_PASSWORD,
                          scope="repository:secret/app:pull,push repository:other/secret:pull")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["scope"] == "repository:secret/app:pull" and "refresh_token" not in body
    assert body["access_token"] == body["token"]
    assert granted(services, response) == {("repository", "secret/app"): {"pull"}}


@pytest.mark.parametrize("form, status, code", [
    ({"password": "wrong"}, 401, "UNAUTHORIZED"),
    ({"grant_type": "refresh_token", "refresh_token": "abc"}, 400, "UNSUPPORTED_VALUE"),
    ({"grant_type": "authorization_code"}, 400, "UNSUPPORTED_VALUE"),
    ({"grant_type": None}, 400, "MISSING_REQUIRED_FIELD"),
    ({"client_id": None}, 400, "MISSING_REQUIRED_FIELD"),
    ({"username": None}, 400, "MISSING_REQUIRED_FIELD"),
    ({"service": "elsewhere"}, 400, "BAD_TOKEN_OPTION"),
])
def test_post_refuses_what_it_cannot_grant(client, team, form, status, code):
    response = post_token(client, **{"username": READER, "password": READER_PASSWORD, **form})
    assert response.status_code == status and response.get_json()["errors"][0]["code"] == code
