"""Docker registry Bearer tokens, verified with the token issuer's public key alone.

The format is the Docker distribution registry's (``docs/spec/auth/jwt.md``
and ``scope.md``): a JWT signed with the issuer's private key (RS256 or ES256;
the other sizes of the same family are accepted too) whose claims are ``iss``,
``sub``, ``aud``, ``exp``, ``nbf``, ``iat``, ``jti`` and ``access``, a list of
``{"type": "repository", "name": "my/app", "actions": ["pull"]}``. As in
distribution's token access controller:

- ``exp`` is required and, like ``nbf``, checked with a leeway of 60 seconds;
- ``iss`` must equal ``token_issuer`` and ``aud`` must name ``token_service``
  when those are configured;
- the action ``"*"`` grants every action on its resource; resource names match
  exactly (no patterns).

The algorithms accepted follow the key's type, never the token's header, so a
token cannot pick a weaker check (no ``none``, no HMAC with the public key).
Pure: PyJWT and cryptography only, no request state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

#: Seconds of clock skew tolerated on ``exp`` and ``nbf`` (distribution's leeway).
LEEWAY_S = 60
WILDCARD_ACTION = "*"
PublicKey = Any


class TokenKeyError(ValueError):
    """The configured public key cannot be used; the message says why."""


class InvalidToken(Exception):
    """A Bearer token that is not a valid token of the configured issuer; the message says why."""


def _algorithms(key: PublicKey) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        return ("RS256", "RS384", "RS512")
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ("ES256", "ES384", "ES512")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return ("EdDSA",)
    raise TokenKeyError(f"a {type(key).__name__} cannot verify registry tokens (use an RSA or EC key)")


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """The public key in a PEM file (a public key or a certificate, as distribution's rootcertbundle)."""
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        raise TokenKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise TokenKeyError(f"{path} is not a PEM public key or certificate ({exc})") from None
    _algorithms(key)
    return key


@dataclass(frozen=True)
class Grant:
    """What a verified token allows: actions by ``(type, name)``."""

    subject: str
    access: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)

    def allows(self, resource_type: str, name: str, action: str) -> bool:
        actions = self.access.get((resource_type, name), frozenset())
        return WILDCARD_ACTION in actions or action in actions

    def may_pull(self, name: str) -> bool:
        return self.allows("repository", name, "pull")

    def pullable(self) -> frozenset[str]:
        """Repository names this token may pull (for the catalog)."""
        return frozenset(name for (kind, name), actions in self.access.items()
                         if kind == "repository" and ("pull" in actions or WILDCARD_ACTION in actions))


def parse_access(claim: Any) -> dict[tuple[str, str], frozenset[str]]:
    """The ``access`` claim as actions by ``(type, name)``; raise ``InvalidToken`` if malformed."""
    if claim is None:
        return {}
    if not isinstance(claim, list):
        raise InvalidToken("access claim is not a list")
    access: dict[tuple[str, str], frozenset[str]] = {}
    for entry in claim:
        if not isinstance(entry, dict):
            raise InvalidToken("access claim entry is not an object")
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions") or []
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(actions, list) \
                or not all(isinstance(action, str) for action in actions):
            raise InvalidToken("access claim entry needs string type and name and a list of actions")
        access[(kind, name)] = access.get((kind, name), frozenset()) | frozenset(actions)
    return access


class TokenVerifier:
    """Verifies tokens of one issuer with its public key; one per process, thread-safe."""

    def __init__(self, public_key: PublicKey, issuer: str = "", audience: str = "",
                 leeway: float = LEEWAY_S) -> None:
        self.public_key = public_key
        self.algorithms = list(_algorithms(public_key))
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: Any) -> "TokenVerifier | None":
        """The verifier ``CraneSettings`` describe, or None when no public key is configured."""
        if not settings.token_public_key:
            return None
        return cls(load_public_key(settings.token_public_key), settings.token_issuer, settings.token_service)

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; raise ``InvalidToken`` saying why a token is refused."""
        try:
            claims = jwt.decode(
                token, self.public_key, algorithms=self.algorithms, leeway=self.leeway,
                issuer=self.issuer or None, audience=self.audience or None,
                options={"require": ["exp"], "verify_aud": bool(self.audience), "verify_iss": bool(self.issuer)})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc) or type(exc).__name__) from None
        subject = claims.get("sub")
        return Grant(subject if isinstance(subject, str) else "", parse_access(claims.get("access")))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for no header or another scheme."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
