"""Docker registry tokens: the signing key pair, issuing and verifying (scopes and grants: ``registry_scopes``).

The one owner of the token format shared by the admin side (which issues
tokens at ``GET /token`` and accepts them on its own ``/v2/``) and Crane (which
verifies them with the public key alone, through ``crane.tokens``). The format
is the Docker distribution registry's (``docs/spec/auth/token.md``, ``jwt.md``,
``scope.md``): a JWT signed with the issuer's private key whose claims are

- ``iss`` (``token_issuer``), ``aud`` (``token_service``), ``sub`` (the login;
  ``""`` for an anonymous caller), ``iat``, ``nbf``, ``exp`` (``iat +
  token_lifetime``), ``jti`` (random);
- ``access``: ``[{"type": "repository", "name": "my/app", "actions": ["pull"]}]``.

The header carries ``kid``, the key's libtrust fingerprint (the key ID Docker
distribution computes for the keys it trusts), so a verifier holding several
keys (a rotation) picks the right one. Keys made here are EC P-256 (ES256),
what distribution's own token server generates.

Verification follows distribution's token access controller: ``iss`` and
``aud`` must match, ``exp`` is required, ``exp``/``nbf``/``iat`` are checked
with a leeway of 30 seconds. The algorithms accepted follow each key's type,
never the token's header: no ``none``, no HMAC (which would let anyone who has
the public key sign with it as the secret).

Pure: PyJWT and cryptography, no Flask, no database.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from pulp_registry.config import ConfigError
from pulp_registry.registry_scopes import Grant, InvalidRegistryToken, parse_access

#: Seconds of clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
LEEWAY_S = 30
#: Smallest RSA signing key accepted.
MIN_RSA_BITS = 2048

PublicKey = Any
PrivateKey = Any


class TokenKeyError(ConfigError):
    """A key file that cannot be used; the message names the setting and the path."""


# --- keys ----------------------------------------------------------------------------------

def key_id(public_key: PublicKey) -> str:
    """The libtrust fingerprint of a public key, as Docker distribution names its trusted keys.

    SHA-256 of the DER ``SubjectPublicKeyInfo``, truncated to 240 bits, base32 in
    twelve groups of four: ``ABCD:EFGH:...:MNOP``.
    """
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i:i + 4] for i in range(0, len(encoded), 4))


def algorithms_for(key: PublicKey | PrivateKey) -> tuple[str, ...]:
    """The JWT algorithms a key of this type may verify (or sign, first one): never ``none`` or HMAC."""
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return ("RS256", "RS384", "RS512")
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        # ES256 is defined on P-256 only, ES384 on P-384, ES512 on P-521 (RFC 7518 3.4).
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        algorithm = by_curve.get(key.curve.name)
        if algorithm is None:
            raise TokenKeyError(f"an EC key on curve {key.curve.name} cannot sign registry tokens "
                                "(use P-256, P-384 or P-521)")
        return (algorithm,)
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return ("EdDSA",)
    raise TokenKeyError(f"a {type(key).__name__} cannot sign or verify registry tokens (use an RSA or EC key)")


PEM_BLOCK_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)


def load_public_keys(path: str | os.PathLike[str]) -> list[PublicKey]:
    """Every public key in a PEM file: public keys and certificates (distribution's rootcertbundle), in order.

    Other blocks (a private key pasted in by mistake) are refused rather than
    skipped, so a wrong file is named at start-up.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TokenKeyError(f"cannot read {path}: {exc.strerror or exc}") from None
    keys = []
    for block in PEM_BLOCK_RE.finditer(data):
        kind = block.group(1).decode()
        try:
            if kind == "CERTIFICATE":
                key = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif kind == "PUBLIC KEY":
                key = serialization.load_pem_public_key(block.group(0))
            else:
                raise TokenKeyError(f"{path} holds a {kind} block; expected PUBLIC KEY or CERTIFICATE blocks")
        except (ValueError, TypeError) as exc:
            raise TokenKeyError(f"{path} is not a PEM public key or certificate ({exc})") from None
        algorithms_for(key)
        keys.append(key)
    if not keys:
        raise TokenKeyError(f"{path} is not a PEM public key or certificate (no PEM block found)")
    return keys


def public_pem(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _same_key(first: PublicKey, second: PublicKey) -> bool:
    return public_pem(first) == public_pem(second)


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_temp(directory: Path, data: bytes, mode: int) -> Path:
    """``data`` in a new file of ``directory`` with permissions ``mode`` from the start, synced."""
    temp = directory / f".tmp-{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)   # exactly ``mode``, whatever the umask
        unwritten = memoryview(data)
        while unwritten:
            unwritten = unwritten[os.write(fd, unwritten):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _create_exclusively(path: Path, data: bytes, mode: int) -> bool:
    """Write ``path`` atomically unless it exists: True if this call created it.

    The content goes to a temp file first and is hard-linked to its final name:
    ``link`` fails if the name exists, so of two processes starting at once
    exactly one key wins, and no reader ever sees a half-written file.
    """
    temp = _write_temp(path.parent, data, mode)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
    return True


def _load_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokenKeyError(f"token_private_key: cannot read {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TokenKeyError(f"token_private_key: {path} is not an unencrypted PEM private key ({exc})") from None
    try:
        algorithms_for(key)
    except TokenKeyError as exc:
        raise TokenKeyError(f"token_private_key: {path}: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise TokenKeyError(f"token_private_key: {path} is a {key.key_size}-bit RSA key; "
                            f"use at least {MIN_RSA_BITS} bits")
    return key


@dataclass(frozen=True)
class TokenKeys:
    """The issuer's key pair: signs tokens (``issue_token``) and checks its own (``verify_token``)."""

    private_key: PrivateKey = field(repr=False)
    public_key: PublicKey
    kid: str
    algorithm: str

    @classmethod
    def from_private_key(cls, private_key: PrivateKey) -> "TokenKeys":
        public_key = private_key.public_key()
        return cls(private_key, public_key, key_id(public_key), algorithms_for(private_key)[0])

    @classmethod
    def load_or_create(cls, settings: Any) -> "TokenKeys":
        """The key pair of ``settings.token_private_key``, made (EC P-256) on first start.

        A new private key is written with 0600 permissions into a directory made
        with 0700, atomically and never over an existing file. The public key is
        written to ``settings.token_public_key`` (0644) when that file is
        missing; an existing one must hold this key (it may hold others too: the
        keys of a rotation), or tokens would be refused by whoever trusts it.
        """
        private_path = Path(settings.token_private_key)
        public_path = Path(settings.token_public_key)
        if not private_path.exists():
            _make_directory(private_path.parent, "token_private_key", 0o700)
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            try:
                _create_exclusively(private_path, pem, 0o600)
            except OSError as exc:
                raise TokenKeyError(f"token_private_key: cannot write {private_path}: "
                                    f"{exc.strerror or exc}") from None
        keys = cls.from_private_key(_load_private_key(private_path))
        keys._ensure_public_key_file(public_path)
        return keys

    def _ensure_public_key_file(self, public_path: Path) -> None:
        if public_path.exists():
            try:
                trusted = load_public_keys(public_path)
            except TokenKeyError as exc:
                raise TokenKeyError(f"token_public_key: {exc}") from None
            if not any(_same_key(self.public_key, key) for key in trusted):
                raise TokenKeyError(
                    f"token_public_key: {public_path} does not hold the public key of token_private_key "
                    f"(kid {self.kid}); add it (a file may hold several keys) or remove the file to have it "
                    "written again")
            return
        _make_directory(public_path.parent, "token_public_key", 0o755)
        try:
            _create_exclusively(public_path, public_pem(self.public_key), 0o644)
        except OSError as exc:
            raise TokenKeyError(f"token_public_key: cannot write {public_path}: {exc.strerror or exc}") from None
        self._ensure_public_key_file(public_path)   # written by another process just now: check it

    def verifier(self, settings: Any) -> "TokenVerifier":
        return TokenVerifier([self.public_key], settings.token_issuer, settings.token_service)


def _make_directory(directory: Path, setting: str, mode: int) -> None:
    """Make ``directory`` with ``mode`` for the last level (as ``mkdir -p -m``); an existing one is left as it is."""
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=mode)
    except FileExistsError:
        pass
    except OSError as exc:
        raise TokenKeyError(f"{setting}: cannot create {directory}: {exc.strerror or exc}") from None


_KEYS_LOCK = threading.Lock()
_KEYS_ATTRIBUTE = "_registry_token_keys"


def keys_for(services: Any) -> TokenKeys:
    """The key pair of ``services.settings``, loaded (or made) once per process and kept on ``services``."""
    keys = getattr(services, _KEYS_ATTRIBUTE, None)
    if keys is None:
        with _KEYS_LOCK:
            keys = getattr(services, _KEYS_ATTRIBUTE, None)
            if keys is None:
                keys = TokenKeys.load_or_create(services.settings)
                setattr(services, _KEYS_ATTRIBUTE, keys)
    return keys


# --- issuing -----------------------------------------------------------------------------------

def rfc3339(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(int(timestamp), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def issue_token(keys: TokenKeys, settings: Any, subject: str, access: list[dict[str, Any]],
                now: float | None = None) -> tuple[str, int, str]:
    """A signed token granting ``access``: ``(jwt, expires_in, issued_at)`` for the token response."""
    issued = int(time.time() if now is None else now)
    lifetime = int(settings.token_lifetime)
    claims = {"iss": settings.token_issuer, "sub": subject, "aud": settings.token_service,
              "iat": issued, "nbf": issued, "exp": issued + lifetime, "jti": secrets.token_urlsafe(16),
              "access": access}
    token = jwt.encode(claims, keys.private_key, algorithm=keys.algorithm, headers={"kid": keys.kid})
    return token, lifetime, rfc3339(issued)


def access_entries(granted: Iterable[tuple[str, str, Iterable[str]]]) -> list[dict[str, Any]]:
    """The ``access`` claim for ``(type, name, actions)`` triples; entries without actions are left out."""
    return [{"type": kind, "name": name, "actions": sorted(set(actions))}
            for kind, name, actions in granted if actions]


# --- verifying -----------------------------------------------------------------------------------

class TokenVerifier:
    """Verifies tokens of one issuer for one audience with its public keys; thread-safe, one per process.

    With several keys (a rotation), the key whose fingerprint is the token's
    ``kid`` checks it; a token without a known ``kid`` is tried with each key.
    """

    def __init__(self, public_keys: Sequence[PublicKey], issuer: str, audience: str,
                 leeway: float = LEEWAY_S) -> None:
        if not public_keys:
            raise ValueError("a token verifier needs at least one public key")
        if not issuer or not audience:
            raise ValueError("a token verifier needs the issuer and the audience (service) to check")
        self.keys = [(key, list(algorithms_for(key))) for key in public_keys]
        self.by_kid = {key_id(key): (key, algorithms) for key, algorithms in self.keys}
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def verify(self, token: str) -> Grant:
        """The grant of a valid token; raise ``InvalidRegistryToken`` saying why a token is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidRegistryToken(str(exc) or type(exc).__name__) from None
        kid = header.get("kid")
        candidates = [self.by_kid[kid]] if isinstance(kid, str) and kid in self.by_kid else self.keys
        options: dict[str, Any] = {"require": ["exp", "iss", "aud"]}
        reason = "the signature matches no trusted key"
        for key, algorithms in candidates:
            try:
                claims = jwt.decode(token, key, algorithms=algorithms, leeway=self.leeway, issuer=self.issuer,
                                    audience=self.audience, options=options)
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
                reason = str(exc) or type(exc).__name__
                continue          # another trusted key (or key type) may have signed it
            except jwt.PyJWTError as exc:
                raise InvalidRegistryToken(str(exc) or type(exc).__name__) from None
            subject = claims.get("sub")
            return Grant(subject if isinstance(subject, str) else "", parse_access(claims.get("access")))
        if len(candidates) == 1:
            raise InvalidRegistryToken(reason)
        raise InvalidRegistryToken(f"the signature matches none of the {len(candidates)} trusted keys")


def verify_token(keys: TokenKeys, settings: Any, token: str) -> tuple[str, dict[tuple[str, str], frozenset[str]]]:
    """``(subject, access)`` of a token this issuer signed (the admin side's ``/v2/``); or ``InvalidRegistryToken``."""
    grant = keys.verifier(settings).verify(token)
    return grant.subject, dict(grant.access)
