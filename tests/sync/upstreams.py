"""Upstream registries for the sync tests: Debian's ``docker-registry`` (distribution 2.8) on 127.0.0.1.

Three shapes of upstream, as users meet them: plain HTTP and anonymous
(``start_registry``), HTTPS with a CA the test makes and htpasswd Basic auth,
and Docker token auth whose realm is ``TokenServer`` (a tiny JWT issuer in the
test process that counts the tokens it gives). ``FlakyProxy`` sits in front of
any of them and answers 500 / 429 / a dropped connection part of the time, or
corrupts the bytes of one blob, so retries and digest checks meet real failures.

The fillers put content in an upstream over plain HTTP with ``requests``
(fast, and every digest is known to the test): images, a multi-platform index,
a big image, an OCI referrer with ``subject`` and a cosign-style
``sha256-<hex>.sig`` tag. ``skopeo_push`` pushes an image built with umoci
through real skopeo, so a real client's output is among the upstream content.

Distribution 2.8 does not implement the OCI referrers API
(``GET /v2/<name>/referrers/<digest>`` answers 404): a sync finds referrers
through the ``sha256-<hex>`` tag scheme there. It stores a manifest carrying
``subject``/``artifactType`` byte for byte all the same.

Plain functions and classes: usable from pytest fixtures (conftest.py) and a REPL.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import re
import secrets
import subprocess
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import bcrypt
import requests

from tests.images import build_oci_layout, skopeo
from tests.ldap_server import Certificates, make_certificates
from tests.servers import free_port, stop_process
from tests.sync.token_server import TokenServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_FOREIGN_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"
MANIFEST_ACCEPT = ", ".join([
    OCI_MANIFEST, OCI_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
START_DEADLINE_S = 30.0


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def ca_file(ca_pem: str) -> str:
    """A file holding ``ca_pem`` (requests and skopeo want paths); one per distinct CA, reused."""
    directory = Path(tempfile.gettempdir()) / "sync-upstream-cas"
    directory.mkdir(exist_ok=True)
    path = directory / f"{hashlib.sha256(ca_pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(ca_pem)
    return str(path)


# --- a registry client with just enough of the auth flows to fill an upstream -------------------

def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="..",service="..",scope=".."`` -> ``("bearer", {realm, service, scope})``."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


class RegistryHttp:
    """``requests`` against one registry, answering a 401 with Basic or a Docker token, as clients do."""

    def __init__(self, url: str, creds: tuple[str, str] | None = None, ca: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.creds = creds
        self.session = requests.Session()
        # per request, not session.verify: REQUESTS_CA_BUNDLE in the environment would override the session's
        self.verify: str | bool = ca_file(ca) if ca else True
        self._tokens: dict[str, str] = {}

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.url + path_or_url
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("verify", self.verify)
        response = self.session.request(method, url, **kwargs)
        if response.status_code != 401:
            return response
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if scheme == "basic" and self.creds:
            self.session.auth = self.creds
        elif scheme == "bearer":
            self.session.auth = None
            self.session.headers["Authorization"] = "Bearer " + self._token(params)
        else:
            return response
        return self.session.request(method, url, **kwargs)

    def _token(self, params: dict[str, str]) -> str:
        scope = params.get("scope", "")
        if scope not in self._tokens:
            query = {"service": params.get("service", "")}
            if scope:
                query["scope"] = scope
            response = requests.get(params["realm"], params=query, auth=self.creds, timeout=30,
                                    verify=self.verify)
            response.raise_for_status()
            body = response.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
        return self._tokens[scope]

    def checked(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        response = self.request(method, path_or_url, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path_or_url}: {response.status_code} {response.text[:500]}")
        return response

    def push_blob(self, name: str, data: bytes) -> str:
        """Upload ``data`` (POST a session, PUT it with the digest) unless the registry has it."""
        digest = sha256_digest(data)
        if self.request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 200:
            return digest
        started = self.checked("POST", f"/v2/{name}/blobs/uploads/")
        location = urllib.parse.urljoin(self.url + "/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        self.checked("PUT", f"{location}{separator}digest={urllib.parse.quote(digest)}", data=data,
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def put_manifest(self, name: str, reference: str, raw: bytes, media_type: str) -> str:
        """PUT ``raw`` under a tag or its digest; return its digest (checked against the registry's)."""
        digest = sha256_digest(raw)
        response = self.checked("PUT", f"/v2/{name}/manifests/{reference}", data=raw,
                                headers={"Content-Type": media_type})
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise RuntimeError(f"registry stored {name}:{reference} as {served}, pushed {digest}")
        return digest

    def descriptor(self, name: str, reference: str) -> dict[str, Any]:
        """``{mediaType, digest, size}`` of a manifest in the registry."""
        response = self.checked("GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        return {"mediaType": response.headers["Content-Type"], "digest": sha256_digest(response.content),
                "size": len(response.content)}


# --- fillers -----------------------------------------------------------------------------------

def parse_platform(platform: str | tuple[str, ...]) -> dict[str, str]:
    """``"linux/arm64/v8"`` or ``("linux", "arm64", "v8")`` -> an OCI platform object."""
    parts = platform.split("/") if isinstance(platform, str) else list(platform)
    result = {"os": parts[0], "architecture": parts[1]}
    if len(parts) > 2 and parts[2]:
        result["variant"] = parts[2]
    return result


def _image_manifest(client: RegistryHttp, name: str, layers: list[bytes],
                    platform: str | tuple[str, ...]) -> dict[str, Any]:
    platform_object = parse_platform(platform)
    config = canonical_json({**platform_object, "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer) for layer in layers]}})
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": client.push_blob(name, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": client.push_blob(name, layer), "size": len(layer)}
                       for layer in layers]}


def push_image(url: str, name: str, tag: str | None, layers: list[bytes],
               platform: str | tuple[str, ...] = ("linux", "amd64"),
               creds: tuple[str, str] | None = None, ca: str | None = None) -> str:
    """Push an OCI image whose layer blobs are exactly ``layers``; tag it ``tag`` (None: by digest only).

    Layer bytes are stored as given (not real tarballs), so a test knows every
    blob digest: ``sha256_digest(layer)``.
    """
    client = RegistryHttp(url, creds, ca)
    raw = canonical_json(_image_manifest(client, name, layers, platform))
    return client.put_manifest(name, tag or sha256_digest(raw), raw, OCI_MANIFEST)


def push_index(url: str, name: str, tag: str,
               platforms: tuple[str, ...] | list[str] = ("linux/amd64", "linux/arm64/v8"),
               creds: tuple[str, str] | None = None, ca: str | None = None) -> tuple[str, dict[str, str]]:
    """Push one image per platform (untagged) and an OCI index tagged ``tag`` listing them.

    Returns ``(index_digest, {"linux/arm64/v8": child_digest, ...})``.
    """
    client = RegistryHttp(url, creds, ca)
    children: dict[str, str] = {}
    descriptors = []
    for platform in platforms:
        layer = f"{name}:{tag} {platform} {secrets.token_hex(8)}\n".encode()
        raw = canonical_json(_image_manifest(client, name, [layer], platform))
        children[platform] = client.put_manifest(name, sha256_digest(raw), raw, OCI_MANIFEST)
        descriptors.append({"mediaType": OCI_MANIFEST, "digest": children[platform], "size": len(raw),
                            "platform": parse_platform(platform)})
    index_raw = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    return client.put_manifest(name, tag, index_raw, OCI_INDEX), children


def big_layer(size_mib: int, seed: int = 0) -> bytes:
    """``size_mib`` MiB of random bytes, the same for the same seed (so a rerun pushes the same blob)."""
    return random.Random(seed).randbytes(size_mib * 1024 * 1024)


def push_big_image(url: str, name: str, tag: str, size_mib: int = 12,
                   creds: tuple[str, str] | None = None, ca: str | None = None, seed: int = 0) -> str:
    """An image with one ``size_mib`` MiB layer (bigger than any single read buffer, for streaming)."""
    return push_image(url, name, tag, [big_layer(size_mib, seed)], creds=creds, ca=ca)


def push_foreign_image(url: str, name: str, tag: str, creds: tuple[str, str] | None = None,
                       ca: str | None = None) -> tuple[str, str]:
    """An image with one ordinary layer and one non-distributable layer (``urls``, blob never uploaded).

    Returns ``(manifest_digest, foreign_layer_digest)``.
    """
    client = RegistryHttp(url, creds, ca)
    manifest = _image_manifest(client, name, [f"local {secrets.token_hex(8)}".encode()], ("linux", "amd64"))
    foreign = f"foreign {secrets.token_hex(8)}".encode()
    foreign_digest = sha256_digest(foreign)
    manifest["layers"].append({"mediaType": OCI_FOREIGN_LAYER, "digest": foreign_digest, "size": len(foreign),
                               "urls": [f"https://example.invalid/layers/{foreign_digest}"]})
    raw = canonical_json(manifest)
    return client.put_manifest(name, tag, raw, OCI_MANIFEST), foreign_digest


def push_referrer(url: str, name: str, subject_digest: str, artifact_type: str = "application/vnd.example.sig",
                  creds: tuple[str, str] | None = None, ca: str | None = None, payload: bytes | None = None) -> str:
    """Push (by digest, untagged) an OCI artifact manifest whose ``subject`` is ``subject_digest``."""
    client = RegistryHttp(url, creds, ca)
    empty = b"{}"
    blob = payload if payload is not None else f"signature of {subject_digest} {secrets.token_hex(8)}".encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": {"mediaType": OCI_EMPTY, "digest": client.push_blob(name, empty), "size": len(empty)},
                "layers": [{"mediaType": artifact_type, "digest": client.push_blob(name, blob), "size": len(blob)}],
                "subject": client.descriptor(name, subject_digest),
                "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}
    raw = canonical_json(manifest)
    return client.put_manifest(name, sha256_digest(raw), raw, OCI_MANIFEST)


def cosign_tag(subject_digest: str, suffix: str = "sig") -> str:
    """``sha256:abc..`` -> ``sha256-abc...sig``: where cosign (and the referrers tag fallback) looks."""
    return subject_digest.replace(":", "-") + "." + suffix


def push_cosign_tag(url: str, name: str, subject_digest: str, creds: tuple[str, str] | None = None,
                    ca: str | None = None) -> str:
    """Push a cosign-style signature manifest tagged ``sha256-<hex>.sig``; return its digest."""
    client = RegistryHttp(url, creds, ca)
    payload = canonical_json({"critical": {"identity": {"docker-reference": name},
                                           "image": {"docker-manifest-digest": subject_digest},
                                           "type": "cosign container image signature"}, "optional": None})
    config = canonical_json({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(payload)]}})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": client.push_blob(name, config), "size": len(config)},
                "layers": [{"mediaType": COSIGN_SIGNATURE, "digest": client.push_blob(name, payload),
                            "size": len(payload),
                            "annotations": {"dev.cosignproject.cosign/signature":
                                            base64.b64encode(secrets.token_bytes(64)).decode()}}]}
    raw = canonical_json(manifest)
    return client.put_manifest(name, cosign_tag(subject_digest), raw, OCI_MANIFEST)


def delete_tag(url: str, name: str, tag: str, creds: tuple[str, str] | None = None, ca: str | None = None) -> None:
    """Delete the manifest ``name:tag`` points to (distribution deletes by digest; its tags go with it)."""
    client = RegistryHttp(url, creds, ca)
    digest = client.descriptor(name, tag)["digest"]
    client.checked("DELETE", f"/v2/{name}/manifests/{digest}")


# --- docker-registry -----------------------------------------------------------------------------

@dataclass
class Upstream:
    """A running docker-registry: what a feed needs (url, ca_bundle, credentials) plus fillers."""

    url: str
    process: subprocess.Popen = field(repr=False)
    workdir: Path
    ca_bundle: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token_server: "TokenServer | None" = None

    @property
    def host(self) -> str:
        """``127.0.0.1:port`` as skopeo's ``docker://`` references want it."""
        return self.url.split("://", 1)[1]

    @property
    def creds(self) -> tuple[str, str] | None:
        return (self.username, self.password) if self.username and self.password else None

    def log_text(self) -> str:
        path = self.workdir / "registry.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {self.process.returncode}:\n{self.log_text()}")

    def http(self) -> RegistryHttp:
        return RegistryHttp(self.url, self.creds, self.ca_bundle)

    def skopeo_args(self, prefix: str = "") -> list[str]:
        """TLS and credential options for skopeo (``prefix`` "src-"/"dest-" for copy)."""
        args = [f"--{prefix}tls-verify={'true' if self.ca_bundle else 'false'}"]
        if self.ca_bundle:
            cert_dir = self.workdir / "skopeo-certs"
            cert_dir.mkdir(exist_ok=True)
            (cert_dir / "ca.crt").write_text(self.ca_bundle)
            args.append(f"--{prefix}cert-dir={cert_dir}")
        if self.creds:
            args.append(f"--{prefix}creds={self.username}:{self.password}")
        else:
            args.append(f"--{prefix}no-creds")
        return args

    # fillers bound to this upstream and its credentials
    def push_image(self, name: str, tag: str | None, layers: list[bytes],
                   platform: str | tuple[str, ...] = ("linux", "amd64")) -> str:
        return push_image(self.url, name, tag, layers, platform, self.creds, self.ca_bundle)

    def push_index(self, name: str, tag: str,
                   platforms: tuple[str, ...] | list[str] = ("linux/amd64", "linux/arm64/v8")
                   ) -> tuple[str, dict[str, str]]:
        return push_index(self.url, name, tag, platforms, self.creds, self.ca_bundle)

    def push_big_image(self, name: str, tag: str, size_mib: int = 12, seed: int = 0) -> str:
        return push_big_image(self.url, name, tag, size_mib, self.creds, self.ca_bundle, seed)

    def push_foreign_image(self, name: str, tag: str) -> tuple[str, str]:
        return push_foreign_image(self.url, name, tag, self.creds, self.ca_bundle)

    def push_referrer(self, name: str, subject_digest: str,
                      artifact_type: str = "application/vnd.example.sig") -> str:
        return push_referrer(self.url, name, subject_digest, artifact_type, self.creds, self.ca_bundle)

    def push_cosign_tag(self, name: str, subject_digest: str) -> str:
        return push_cosign_tag(self.url, name, subject_digest, self.creds, self.ca_bundle)

    def delete_tag(self, name: str, tag: str) -> None:
        delete_tag(self.url, name, tag, self.creds, self.ca_bundle)

    def skopeo_push(self, name: str, tag: str, workdir: Path | None = None,
                    layers: list[dict[str, bytes]] | None = None) -> str:
        """Build an image with umoci and push it with ``skopeo copy oci:DIR:TAG docker://...``; its digest."""
        workdir = Path(workdir or tempfile.mkdtemp(prefix="skopeo-push-", dir=self.workdir))
        layout = build_oci_layout(workdir, tag, layers=layers)
        digest_file = workdir / f"digest-{secrets.token_hex(4)}"
        skopeo("copy", *self.skopeo_args("dest-"), f"--digestfile={digest_file}",
               f"oci:{layout}:{tag}", f"docker://{self.host}/{name}:{tag}")
        return digest_file.read_text().strip()


def registry_config(workdir: Path, port: int, certificates: Certificates | None = None,
                    htpasswd: Path | None = None, token: "TokenServer | None" = None) -> str:
    """docker-registry's YAML: filesystem storage with delete enabled, 127.0.0.1 only, optional TLS/auth."""
    lines = ["version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: false",
             "storage:", "  filesystem:", f"    rootdirectory: {workdir / 'data'}",
             "  delete:", "    enabled: true", "http:", f"  addr: 127.0.0.1:{port}",
             f"  secret: {secrets.token_hex(16)}"]
    if certificates:
        lines += ["  tls:", f"    certificate: {certificates.cert_file}", f"    key: {certificates.key_file}"]
    if htpasswd:
        lines += ["auth:", "  htpasswd:", "    realm: test-upstream", f"    path: {htpasswd}"]
    elif token:
        lines += ["auth:", "  token:", f"    realm: {token.url}/token", f"    service: {token.service}",
                  f"    issuer: {token.issuer}", f"    rootcertbundle: {token.cert_file}"]
    # non-distributable layers (``urls``) are refused unless their URLs are allowed
    lines += ["validation:", "  manifests:", "    urls:", "      allow:", "        - ^https?://"]
    return "\n".join(lines) + "\n"


def write_htpasswd(path: Path, username: str, password: str) -> Path:
    """An htpasswd line as docker-registry reads it (bcrypt only; low cost: tests, not secrets)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{username}:{hashed}\n")
    return path


@contextlib.contextmanager
def start_registry(workdir: Path, *, tls: bool = False, username: str | None = None,
                   password: str | None = None, token: "TokenServer | None" = None) -> Iterator[Upstream]:
    """Run ``docker-registry serve`` on a free 127.0.0.1 port; stop it when the block ends.

    ``tls`` makes a CA and a certificate for 127.0.0.1 (IP SAN) and serves HTTPS;
    ``username``/``password`` turn on htpasswd Basic auth; ``token`` turns on
    token auth with that server as realm. The log is printed when start-up fails.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    certificates = make_certificates(workdir / "tls") if tls else None
    htpasswd = write_htpasswd(workdir / "htpasswd", username, password) if username and password else None
    config = workdir / "registry.yml"
    config.write_text(registry_config(workdir, port, certificates, htpasswd, token))
    scheme = "https" if tls else "http"
    with (workdir / "registry.log").open("wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    upstream = Upstream(f"{scheme}://127.0.0.1:{port}", process, workdir,
                        certificates.ca_file.read_text() if certificates else None,
                        username if htpasswd else None, password if htpasswd else None, token)
    try:
        _wait_until_serving(upstream)
        yield upstream
    except BaseException:
        stop_process(process)
        tail = "\n".join(upstream.log_text().splitlines()[-40:])
        print(f"----- docker-registry log ({workdir}, last lines) -----\n{tail}\n----- end -----")
        raise
    finally:
        stop_process(process)


def _wait_until_serving(upstream: Upstream) -> None:
    """``/v2/`` answers 200, or 401 with auth on (the registry is up either way)."""
    deadline = time.monotonic() + START_DEADLINE_S
    verify = ca_file(upstream.ca_bundle) if upstream.ca_bundle else True
    while True:
        upstream.check_alive()
        try:
            if requests.get(upstream.url + "/v2/", timeout=5, verify=verify).status_code in (200, 401):
                return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
