"""Crane's side of registry tokens: the trusted keys its settings name, and the verifier built from them.

The token format and its checks (claims, ``kid``, algorithms by key type,
30 s leeway, the ``access`` claim, ``Bearer`` headers) have one owner,
``pulp_registry.registry_tokens``, a pure module the admin side issues tokens
with; Crane only verifies, with public keys alone.

``token_public_key`` may name several PEM files, comma-separated, and each file
may hold several keys or certificates: while keys rotate, Crane trusts the old
and the new key, and a token's ``kid`` picks the one that checks it.
"""
from __future__ import annotations

from typing import Any

from pulp_registry.registry_tokens import PublicKey, TokenKeyError, TokenVerifier, load_public_keys


def key_files(setting: str) -> list[str]:
    """The files a ``token_public_key`` setting names (comma-separated)."""
    return [path.strip() for path in setting.split(",") if path.strip()]


def load_trusted_keys(setting: str) -> list[PublicKey]:
    """Every public key of every file ``token_public_key`` names; ``TokenKeyError`` names a bad file."""
    keys: list[PublicKey] = []
    for path in key_files(setting):
        keys.extend(load_public_keys(path))
    if not keys:
        raise TokenKeyError(f"{setting!r} names no key file")
    return keys


def verifier_for(settings: Any) -> TokenVerifier | None:
    """The verifier ``CraneSettings`` describe, or None when no public key is configured (no token auth)."""
    if not settings.token_public_key:
        return None
    return TokenVerifier(load_trusted_keys(settings.token_public_key), settings.token_issuer,
                         settings.token_service)
