"""A Docker token server for the sync tests' upstream registry (``auth.token`` of docker-registry).

It signs ES256 tokens whose ``kid`` docker-registry finds in its ``rootcertbundle``,
grants pull to anyone on public repositories and push to its one user, and counts
what it issues (tests check that a sync reuses one token).
"""
from __future__ import annotations

import base64
import datetime
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pulp_registry.registry_tokens import key_id


SERVICE = "test-upstream"
ISSUER = "test-token-issuer"


def self_signed_signing_key(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, Path]:
    """An EC P-256 key and a self-signed certificate of it: docker-registry's ``rootcertbundle``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test token signer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    path = directory / "token-signer.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


@dataclass
class TokenRequest:
    """One ``GET /token`` as the server saw it (tests check who asked for what, and reuse)."""

    username: str | None
    service: str
    scopes: list[str]
    granted: list[dict[str, Any]]


class TokenServer:
    """A Docker token realm: ``GET /token?service=..&scope=..`` -> ``{"token": JWT, ...}``.

    Anonymous callers get ``pull`` on public repositories (names not starting with
    a ``private_prefixes`` entry); a caller with the right Basic credentials gets
    ``pull,push`` everywhere; wrong credentials get 401. Tokens are ES256 JWTs
    whose ``kid`` is the libtrust fingerprint of the signing key, which
    distribution 2.8 looks up among the keys of its ``rootcertbundle``.
    """

    def __init__(self, workdir: Path, username: str = "syncer", password: str = "syncer-secret",
                 expires_in: int = 300, private_prefixes: tuple[str, ...] = ("private/",)) -> None:
        self.username, self.password = username, password
        self.expires_in = expires_in
        self.private_prefixes = private_prefixes
        self.service, self.issuer = SERVICE, ISSUER
        self.private_key, self.cert_file = self_signed_signing_key(Path(workdir))
        self.kid = key_id(self.private_key.public_key())
        self.requests: list[TokenRequest] = []
        self.failures = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="token-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issued(self) -> int:
        """How many tokens were handed out (a client reusing its token keeps this low)."""
        with self._lock:
            return len(self.requests)

    def start(self) -> "TokenServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "TokenServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def grant(self, username: str | None, scopes: list[str]) -> list[dict[str, Any]]:
        """The ``access`` claim: what ``username`` (None: anonymous) may do of what it asked."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            wanted = set(actions.split(","))
            allowed = {"pull", "push"} if username else (
                set() if name.startswith(self.private_prefixes) else {"pull"})
            if wanted & allowed:
                access.append({"type": "repository", "name": name, "actions": sorted(wanted & allowed)})
        return access

    def mint(self, scopes: list[str], username: str | None = None, expires_in: int | None = None,
             service: str | None = None) -> str:
        """A signed token for ``scopes`` as ``grant`` allows, not counted: a feed's static bearer token."""
        access = self.grant(username, scopes)
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        claims = {"iss": self.issuer, "sub": username or "", "aud": service or self.service, "iat": now,
                  "nbf": now - 5, "exp": now + lifetime, "jti": secrets.token_hex(12), "access": access}
        return jwt.encode(claims, self.private_key, algorithm="ES256", headers={"kid": self.kid})

    def issue(self, username: str | None, service: str, scopes: list[str]) -> dict[str, Any]:
        """The realm's answer to one ``GET /token`` (counted in ``requests``/``issued``)."""
        access = self.grant(username, scopes)
        token = self.mint(scopes, username, service=service)
        now = int(time.time())
        with self._lock:
            self.requests.append(TokenRequest(username, service, scopes, access))
        return {"token": token, "access_token": token, "expires_in": self.expires_in,
                "issued_at": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat()}

    def authenticate(self, header: str | None) -> tuple[bool, str | None]:
        """``(ok, username)`` for an Authorization header: no header is anonymous, a wrong password fails."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False, None
        if username == self.username and secrets.compare_digest(password, self.password):
            return True, username
        return False, None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                if parsed.path != "/token":
                    return self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                ok, username = server.authenticate(self.headers.get("Authorization"))
                if not ok:
                    with server._lock:
                        server.failures += 1
                    return self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                       {"WWW-Authenticate": 'Basic realm="test-token-server"'})
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                service = query.get("service", [server.service])[0]
                self._reply(200, server.issue(username, service, scopes))

            def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
