"""Real clients against Crane under gunicorn: ``docker manifest inspect``, ``skopeo copy`` to ``oci:``,
and skopeo through the Bearer token flow of a protected registry (anonymous pull off).

The docker CLI needs no engine for ``manifest inspect``; DOCKER_CONFIG points at
a temporary directory so the user's own configuration is never read or written.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pulp_registry import oci
from tests.crane.content import Publisher
from tests.crane.live import running_crane, store_layout
from tests.images import (build_oci_index_layout, build_oci_layout, layout_blob, layout_descriptor,
                          manifest_digests, skopeo)

pytestmark = pytest.mark.e2e


@pytest.fixture
def images(services, tmp_path: Path) -> dict[str, Any]:
    publisher = Publisher(services)
    repo = publisher.repository("clients/app")
    single = build_oci_layout(tmp_path / "build", "1.0",
                              layers=[{"etc/motd": b"hello\n", "bin.dat": os.urandom(50_000)}])
    multi = build_oci_index_layout(tmp_path / "build", "multi")
    digests = {"1.0": store_layout(services, repo, single, "1.0"),
               "multi": store_layout(services, repo, multi, "multi")}
    docker = publisher.image(repo, "docker", media_type=oci.DOCKER_MANIFEST)
    publisher.publish(repo)
    return {"single": single, "multi": multi, "digests": digests, "docker": docker}


@pytest.fixture
def crane_host(services, images, tmp_path: Path) -> Iterator[str]:
    with running_crane(services.settings.published_dir, tmp_path / "crane.log") as host:
        yield host


def docker_cli(tmp_path: Path, *args: str) -> str:
    config = tmp_path / "docker-config"
    config.mkdir(exist_ok=True)
    if shutil.which("docker") is None:
        raise RuntimeError("the docker CLI is not installed (apt-get install docker.io or docker-ce-cli)")
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "DOCKER_CONFIG": str(config)})
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def test_docker_manifest_inspect_shows_the_published_manifests(crane_host, images, tmp_path):
    single, multi = images["single"], images["multi"]
    shown = json.loads(docker_cli(tmp_path, "manifest", "inspect", "--insecure", f"{crane_host}/clients/app:1.0"))
    assert shown == json.loads(layout_blob(single, images["digests"]["1.0"]))

    docker = images["docker"]
    shown = json.loads(docker_cli(tmp_path, "manifest", "inspect", "--insecure", f"{crane_host}/clients/app:docker"))
    assert shown == json.loads(docker.raw)

    index_raw = layout_blob(multi, images["digests"]["multi"])
    shown = json.loads(docker_cli(tmp_path, "manifest", "inspect", "--insecure", f"{crane_host}/clients/app:multi"))
    assert shown == json.loads(index_raw)
    # Verbose: every platform's manifest, fetched by digest, with its exact bytes.
    entries = json.loads(docker_cli(tmp_path, "manifest", "inspect", "--insecure", "-v",
                                    f"{crane_host}/clients/app:multi"))
    children = json.loads(index_raw)["manifests"]
    assert [entry["Descriptor"]["digest"] for entry in entries] == [child["digest"] for child in children]
    for entry, child in zip(entries, children):
        assert base64.b64decode(entry["Raw"]) == layout_blob(multi, child["digest"])


def test_skopeo_copies_to_an_oci_layout_with_the_digests_pushed(crane_host, images, tmp_path):
    pulled = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{crane_host}/clients/app:1.0", f"oci:{pulled}:1.0")
    assert layout_descriptor(pulled, "1.0")["digest"] == images["digests"]["1.0"]
    assert manifest_digests(pulled, "1.0") == manifest_digests(images["single"], "1.0")
    digest = images["digests"]["1.0"]
    for descriptor in json.loads(layout_blob(pulled, digest))["layers"]:
        assert layout_blob(pulled, descriptor["digest"]) == layout_blob(images["single"], descriptor["digest"])

    everything = tmp_path / "pulled-all"
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{crane_host}/clients/app:multi",
           f"oci:{everything}:multi")
    assert layout_descriptor(everything, "multi")["digest"] == images["digests"]["multi"]
    for child in json.loads(layout_blob(images["multi"], images["digests"]["multi"]))["manifests"]:
        assert layout_blob(everything, child["digest"]) == layout_blob(images["multi"], child["digest"])


# --- the Bearer token flow with a real client ------------------------------------------------------

class TokenServer:
    """The smallest token server of the Docker token spec: Basic credentials in, a signed JWT out."""

    def __init__(self, key: Any, issuer: str, service: str, users: dict[str, str], grants: dict[str, list[str]]):
        self.key, self.issuer, self.service, self.users, self.grants = key, issuer, service, users, grants
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:   # noqa: N802 - http.server's name
                server.requests.append(self.path)
                query = parse_qs(urlparse(self.path).query)
                user = server.user_of(self.headers.get("Authorization"))
                if user is None:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    allowed = [a for a in actions.split(",") if name in server.grants.get(user, [])]
                    access.append({"type": kind, "name": name, "actions": allowed})
                now = int(time.time())
                token = jwt.encode({"iss": server.issuer, "sub": user, "aud": query.get("service", [""])[0],
                                    "iat": now, "nbf": now, "exp": now + 300, "access": access},
                                   server.key, algorithm="RS256")
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def user_of(self, authorization: str | None) -> str | None:
        if not authorization or not authorization.startswith("Basic "):
            return None
        login, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        return login if self.users.get(login) == password else None

    def __enter__(self) -> "TokenServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def test_skopeo_pulls_through_the_token_flow_when_anonymous_pull_is_off(services, images, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_key = tmp_path / "issuer.pem"
    public_key.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    with TokenServer(key, "test-issuer", "crane-test", {"alice": "secret", "bob": "builder"},
                     {"alice": ["clients/app"]}) as tokens, \
            running_crane(services.settings.published_dir, tmp_path / "crane.log", anonymous_pull="false",
                          token_public_key=str(public_key), token_issuer="test-issuer",
                          token_service="crane-test", token_realm=tokens.url) as host:
        source = f"docker://{host}/clients/app:1.0"
        with pytest.raises(RuntimeError, match="unauthorized"):    # the token server refuses anonymous callers
            skopeo("inspect", "--tls-verify=false", "--no-creds", source)
        with pytest.raises(RuntimeError, match="does not grant pull"):   # bob's token lacks the scope
            skopeo("inspect", "--tls-verify=false", "--creds", "bob:builder", source)
        inspected = json.loads(skopeo("inspect", "--tls-verify=false", "--creds", "alice:secret", source).stdout)
        assert inspected["Digest"] == images["digests"]["1.0"]
        pulled = tmp_path / "pulled-with-token"
        skopeo("copy", "--src-tls-verify=false", "--src-creds", "alice:secret", source, f"dir:{pulled}")
        assert manifest_digests(pulled) == manifest_digests(images["single"], "1.0")
        assert any("scope=repository%3Aclients%2Fapp%3Apull" in path or "scope=repository:clients/app:pull" in path
                   for path in tokens.requests)
