"""Forged and stale registry tokens are refused by the admin /v2/ with 401 (``error="invalid_token"``)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from pulp_registry.registry_tokens import issue_token, keys_for

ACCESS = [{"type": "repository", "name": "my/app", "actions": ["pull", "push"]}]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(services, **changes) -> dict:
    now = int(time.time())
    return {"iss": services.settings.token_issuer, "aud": services.settings.token_service, "sub": "admin",
            "iat": now, "nbf": now, "exp": now + 300, "jti": "x", "access": ACCESS, **changes}


def unsigned(header: dict, body: dict, signature: bytes = b"") -> str:
    return ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(body).encode()), _b64(signature)])


def forgeries(services) -> dict[str, str]:
    keys = keys_for(services)
    public_pem = open(services.settings.token_public_key, "rb").read()
    body = claims(services)
    signing_input = ".".join(unsigned({"alg": "HS256", "typ": "JWT", "kid": keys.kid}, body).split(".")[:2])
    hs256 = signing_input + "." + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    other_key = ec.generate_private_key(ec.SECP256R1())
    now = int(time.time())
    return {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, body),
        "HS256 keyed with the public key": hs256,
        "another key": jwt.encode(body, other_key, algorithm="ES256", headers={"kid": keys.kid}),
        "wrong audience": jwt.encode(claims(services, aud="someone-else"), keys.private_key, algorithm="ES256"),
        "wrong issuer": jwt.encode(claims(services, iss="evil"), keys.private_key, algorithm="ES256"),
        "expired": jwt.encode(claims(services, iat=now - 400, nbf=now - 400, exp=now - 60), keys.private_key,
                              algorithm="ES256"),
        "not yet valid": jwt.encode(claims(services, nbf=now + 120), keys.private_key, algorithm="ES256"),
    }


def test_a_genuine_token_is_accepted(client, services):
    token, _, _ = issue_token(keys_for(services), services.settings, "admin", ACCESS)
    assert client.post("/v2/my/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}).status_code == 202


@pytest.mark.parametrize("kind", ["alg none", "HS256 keyed with the public key", "another key", "wrong audience",
                                  "wrong issuer", "expired", "not yet valid"])
def test_a_forged_or_stale_token_is_refused_with_401(client, services, kind):
    token = forgeries(services)[kind]
    refused = client.post("/v2/my/app/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401, kind
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert services.db.uploads.count_documents({}) == 0
