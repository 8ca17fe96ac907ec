"""``pulp_registry.registry_tokens``: the signing key made once and kept, tokens issued and verified, scopes parsed.

Tokens are checked with PyJWT and cryptography as they are; forged ones are
built by hand where PyJWT refuses to build them (HS256 keyed with the public key).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pulp_registry.config import ConfigError, Settings
from pulp_registry.registry_scopes import Grant, InvalidRegistryToken, bearer_token, parse_access, parse_scope
from pulp_registry.registry_tokens import (TokenKeyError, TokenKeys, TokenVerifier, issue_token, key_id, keys_for,
                                           load_public_keys, verify_token)

KID_RE = re.compile(r"^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$")
ACCESS = [{"type": "repository", "name": "my/app", "actions": ["pull", "push"]}]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=str(tmp_path / "data"), mongo_url="mongomock://", broker_url="memory://")


@pytest.fixture
def keys(settings) -> TokenKeys:
    return TokenKeys.load_or_create(settings)


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_now(settings: Settings, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": settings.token_issuer, "aud": settings.token_service, "sub": "alice", "iat": now, "nbf": now,
              "exp": now + 300, "access": ACCESS}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def sign(keys: TokenKeys, claims: dict) -> str:
    return jwt.encode(claims, keys.private_key, algorithm=keys.algorithm, headers={"kid": keys.kid})


# --- the key pair -------------------------------------------------------------------------------

def test_the_first_start_makes_an_ec_p256_key_readable_only_by_its_owner(settings, keys):
    private, public = Path(settings.token_private_key), Path(settings.token_public_key)
    assert private == Path(settings.data_dir) / "keys" / "token-signing.pem"
    assert mode(private) == 0o600 and mode(private.parent) == 0o700
    assert mode(public) == 0o644
    assert keys.algorithm == "ES256" and isinstance(keys.private_key, ec.EllipticCurvePrivateKey)
    assert keys.private_key.curve.name == "secp256r1"
    assert KID_RE.match(keys.kid) and keys.kid == key_id(keys.public_key)
    assert [key_id(key) for key in load_public_keys(public)] == [keys.kid]
    assert sorted(path.name for path in private.parent.iterdir()) == ["token-public.pem", "token-signing.pem"]


def test_the_key_is_kept_across_restarts_and_never_overwritten(settings, keys):
    private = Path(settings.token_private_key)
    before = private.read_bytes()
    Path(settings.token_public_key).unlink()          # a lost public key is written again from the private one
    again = TokenKeys.load_or_create(settings)
    assert again.kid == keys.kid and private.read_bytes() == before
    assert [key_id(key) for key in load_public_keys(settings.token_public_key)] == [keys.kid]


def _load_kid(private_key: str, public_key: str, start, results) -> None:
    start.wait(10)
    where = SimpleNamespace(token_private_key=private_key, token_public_key=public_key)
    results.put(TokenKeys.load_or_create(where).kid)


def test_processes_starting_at_once_end_with_one_key(tmp_path):
    private, public = str(tmp_path / "keys" / "signing.pem"), str(tmp_path / "keys" / "public.pem")
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_load_kid, args=(private, public, start, results)) for _ in range(8)]
    for process in processes:
        process.start()
    time.sleep(0.3)            # let every process reach the start line
    start.set()
    kids = {results.get(timeout=60) for _ in processes}
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(kids) == 1
    assert [key_id(key) for key in load_public_keys(public)] == list(kids)
    assert sorted(path.name for path in (tmp_path / "keys").iterdir()) == ["public.pem", "signing.pem"]


def test_threads_starting_at_once_end_with_one_key(tmp_path):
    where = SimpleNamespace(token_private_key=str(tmp_path / "k" / "s.pem"),
                            token_public_key=str(tmp_path / "k" / "p.pem"))
    barrier, kids = threading.Barrier(8), []

    def load() -> None:
        barrier.wait()
        kids.append(TokenKeys.load_or_create(where).kid)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8 and len(set(kids)) == 1


def test_an_unreadable_or_invalid_private_key_is_a_configuration_error_naming_the_path(settings, tmp_path):
    Path(settings.token_private_key).parent.mkdir(parents=True)
    Path(settings.token_private_key).mkdir()          # something that cannot be read as a file
    with pytest.raises(ConfigError, match=f"token_private_key: cannot read {re.escape(settings.token_private_key)}"):
        TokenKeys.load_or_create(settings)
    Path(settings.token_private_key).rmdir()
    Path(settings.token_private_key).write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    with pytest.raises(TokenKeyError, match=f"token_private_key: {re.escape(settings.token_private_key)} is not"):
        TokenKeys.load_or_create(settings)


def test_an_existing_rsa_key_signs_rs256_and_a_short_one_is_refused(settings):
    path = Path(settings.token_private_key)
    path.parent.mkdir(parents=True)

    def write(key) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    write(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    keys = TokenKeys.load_or_create(settings)
    assert keys.algorithm == "RS256"
    assert verify_token(keys, settings, issue_token(keys, settings, "alice", ACCESS)[0])[0] == "alice"
    write(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    Path(settings.token_public_key).unlink()
    with pytest.raises(TokenKeyError, match="1024-bit RSA key"):
        TokenKeys.load_or_create(settings)


def test_a_public_key_file_must_hold_the_signing_keys_public_key(settings, keys):
    public = Path(settings.token_public_key)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ours = public.read_bytes()
    public.write_bytes(other_pem)
    with pytest.raises(TokenKeyError, match=f"token_public_key: {re.escape(str(public))} does not hold"):
        TokenKeys.load_or_create(settings)
    public.write_bytes(other_pem + ours)              # a rotation's bundle: old and new keys
    assert TokenKeys.load_or_create(settings).kid == keys.kid


def test_keys_for_loads_once_per_services_object(settings):
    services = SimpleNamespace(settings=settings)
    results = []
    threads = [threading.Thread(target=lambda: results.append(keys_for(services))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(keys) for keys in results}) == 1 and keys_for(services) is results[0]


# --- issuing and verifying ------------------------------------------------------------------------

def test_an_issued_token_carries_the_claims_of_distributions_token_spec(settings, keys):
    now = time.time()
    token, expires_in, issued_at = issue_token(keys, settings, "alice", ACCESS, now=now)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "ES256" and header["kid"] == keys.kid
    assert (claims["iss"], claims["aud"], claims["sub"]) == (settings.token_issuer, settings.token_service, "alice")
    assert claims["iat"] == claims["nbf"] == int(now) and claims["exp"] == int(now) + settings.token_lifetime
    assert expires_in == settings.token_lifetime == 300
    assert claims["access"] == ACCESS and len(claims["jti"]) >= 16
    assert issued_at == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(now)))
    assert jwt.decode(issue_token(keys, settings, "alice", ACCESS)[0],
                      options={"verify_signature": False})["jti"] != claims["jti"]


def test_a_token_round_trips_to_its_subject_and_access(settings, keys):
    catalog = {"type": "registry", "name": "catalog", "actions": ["*"]}
    token = issue_token(keys, settings, "alice", ACCESS + [catalog])[0]
    subject, access = verify_token(keys, settings, token)
    assert subject == "alice"
    assert access == {("repository", "my/app"): frozenset({"pull", "push"}),
                      ("registry", "catalog"): frozenset({"*"})}
    assert verify_token(keys, settings, issue_token(keys, settings, "", [])[0]) == ("", {})


def forged_tokens(settings: Settings, keys: TokenKeys) -> dict[str, str]:
    claims = claims_now(settings)
    header_none = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": keys.kid}).encode())
    public_pem = Path(settings.token_public_key).read_bytes()
    hs_signature = b64(hmac.new(public_pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest())
    stranger = TokenKeys.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    impostor = jwt.encode(claims, stranger.private_key, algorithm="ES256", headers={"kid": keys.kid})
    return {
        "alg none": f"{header_none}.{payload}.",
        "HS256 keyed with the public key": f"{hs_header}.{payload}.{hs_signature}",
        "another key": sign(stranger, claims),
        "another key claiming our kid": impostor,
        "not a JWT": "not.a.token",
    }


@pytest.mark.parametrize("forgery", ["alg none", "HS256 keyed with the public key", "another key",
                                     "another key claiming our kid", "not a JWT"])
def test_forged_tokens_are_refused(settings, keys, forgery):
    with pytest.raises(InvalidRegistryToken):
        verify_token(keys, settings, forged_tokens(settings, keys)[forgery])


@pytest.mark.parametrize("changes, reason", [
    ({"aud": "another-registry"}, "(?i)audience"),
    ({"iss": "someone-else"}, "(?i)issuer"),
    ({"aud": None}, "aud"),
    ({"iss": None}, "iss"),
    ({"exp": None}, "exp"),
    ({"access": "repository:my/app:pull"}, "access"),
    ({"access": [{"type": "repository", "name": "x", "actions": "pull"}]}, "access"),
])
def test_tokens_for_someone_else_out_of_time_or_malformed_are_refused(settings, keys, changes, reason):
    with pytest.raises(InvalidRegistryToken, match=reason):
        verify_token(keys, settings, sign(keys, claims_now(settings, **changes)))


@pytest.mark.parametrize("claim, offset, reason", [("exp", -36, "(?i)expired"), ("nbf", 36, "(?i)not yet valid"),
                                                   ("iat", 36, "(?i)not yet valid")])
def test_tokens_out_of_time_by_more_than_30_seconds_are_refused(settings, keys, claim, offset, reason):
    with pytest.raises(InvalidRegistryToken, match=reason):
        verify_token(keys, settings, sign(keys, claims_now(settings, **{claim: int(time.time()) + offset})))


def test_clock_skew_within_30_seconds_is_tolerated(settings, keys):
    now = int(time.time())
    for changes in ({"exp": now - 25}, {"nbf": now + 25}, {"iat": now + 25}):
        assert verify_token(keys, settings, sign(keys, claims_now(settings, **changes)))[0] == "alice"


def test_a_verifier_with_several_keys_picks_by_kid_or_tries_each(settings, keys):
    old = TokenKeys.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    verifier = TokenVerifier([old.public_key, keys.public_key], settings.token_issuer, settings.token_service)
    claims = claims_now(settings)
    without_kid = jwt.encode(claims, old.private_key, algorithm="RS256")
    for token in (sign(keys, claims), sign(old, claims), without_kid):
        assert verifier.verify(token).may_pull("my/app")
    stranger = TokenKeys.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(InvalidRegistryToken, match="none of the 2 trusted keys"):
        verifier.verify(sign(stranger, claims))
    with pytest.raises(ValueError):
        TokenVerifier([keys.public_key], "", settings.token_service)


def test_grants_and_bearer_headers_are_plain_values():
    assert parse_access([{"type": "repository", "name": "x", "actions": ["pull"]},
                         {"type": "repository(plugin)", "name": "x", "actions": ["push"]}]) == \
        {("repository", "x"): frozenset({"pull", "push"})}
    grant = Grant("bob", {("repository", "a"): frozenset({"*"}), ("repository", "b"): frozenset({"push"})})
    assert grant.pullable() == {"a"} and grant.may_pull("a") and not grant.may_pull("b")
    assert bearer_token("Bearer abc.def") == "abc.def" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic dXNlcjpwYXNz") is None and bearer_token(None) is None and bearer_token("Bearer") is None


# --- scopes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scope, parsed", [
    ("repository:my/app:pull", [("repository", "my/app", ("pull",))]),
    ("repository:my/app:pull,push", [("repository", "my/app", ("pull", "push"))]),
    ("repository:a:pull repository:b:push", [("repository", "a", ("pull",)), ("repository", "b", ("push",))]),
    ("repository(plugin):my/plugin:pull", [("repository", "my/plugin", ("pull",))]),
    ("registry:catalog:*", [("registry", "catalog", ("*",))]),
    ("repository:registry.example.com/team/app:pull", [("repository", "registry.example.com/team/app", ("pull",))]),
    ("repository:localhost:5000/team/app:pull", [("repository", "localhost:5000/team/app", ("pull",))]),
    ("repository:my/app:pull,pull,,Push", [("repository", "my/app", ("pull",))]),
    ("", []),
    ("repository", []),
    ("repository:my/app", []),
    ("repository::pull", []),
    ("Repository:my/app:pull", []),
    ("repository:my/app:", []),
])
def test_scopes_follow_the_grammar_of_scope_md_and_malformed_ones_are_ignored(scope, parsed):
    assert parse_scope(scope) == parsed


def test_the_token_module_is_pure_so_crane_may_share_it():
    """Crane imports it, and Crane never loads the database, the broker or Flask-side admin code through it."""
    unwanted = ("pymongo", "mongomock", "celery", "flask", "pulp_registry.db")
    code = (f"import sys, pulp_registry.registry_tokens, crane.tokens; "
            f"print(sorted(m for m in {unwanted!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
