"""Pushes and pulls through the shipped nginx config over HTTPS (issue 11, point 4).

skopeo pushes a 100 MiB image to nginx's admin server and pulls it back from
nginx's pull server (Crane behind it, blobs leaving through X-Accel-Redirect);
a push made with requests shows every ``Location`` is the public https URL;
manifests by digest of public repositories come from nginx's cache the second
time, by tag and protected ones never do.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import time
from pathlib import Path

import pytest
import requests

from tests.images import layout_manifest, skopeo
from tests.nginx.stack import ADMIN_LOGIN, ADMIN_SECRET, Stack
from tests.servers import free_port, poll
from tests.sync.upstreams import RegistryHttp

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = {"Accept": f"{OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzipped tar layer holding ``files`` and the digest of the uncompressed tar (its diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0), sha256(raw.getvalue())


def write_layout(path: Path, tag: str, layers: list[tuple[bytes, str]]) -> str:
    """An OCI image layout with one image tagged ``tag``; returns the manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha256(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": put(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": put(data), "size": len(data)} for data, _ in layers],
    }).encode()
    digest = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return digest


def wait_pullable(stack: Stack, name: str, tag: str, digest: str, client: RegistryHttp | None = None) -> None:
    """Poll nginx's pull server until Crane serves ``name:tag`` as ``digest`` (the publish is done)."""
    def served() -> bool:
        url = f"{stack.pull_url}/v2/{name}/manifests/{tag}"
        response = (client.request("GET", url, headers=ACCEPT) if client is not None
                    else requests.get(url, headers=ACCEPT, verify=stack.ca_file, timeout=10))
        return response.status_code == 200 and response.headers["Docker-Content-Digest"] == digest

    poll(served, 120, f"{name}:{tag} pullable through nginx", interval_s=0.3)


def admin_client(stack: Stack, url: str | None = None) -> RegistryHttp:
    return RegistryHttp(url or stack.admin_url, (ADMIN_LOGIN, ADMIN_SECRET), Path(stack.ca_file).read_text())


def push_small_image(client: RegistryHttp, name: str, tag: str) -> str:
    data, diff_id = layer({"hello.txt": os.urandom(64).hex().encode()})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": client.push_blob(name, config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": client.push_blob(name, data), "size": len(data)}],
    }).encode()
    return client.put_manifest(name, tag, manifest, OCI_MANIFEST)


def test_skopeo_pushes_and_pulls_the_100_mib_image_through_nginx_over_https(stack: Stack, tmp_path: Path):
    big, big_diff_id = layer({"data/big.bin": os.urandom(100 * MiB)})
    small = layer({"etc/hello.txt": b"pushed through nginx\n"})
    source = tmp_path / "source"
    pushed_digest = write_layout(source, "v1", [small, (big, big_diff_id)])
    name, digest_file = "nginx/big", tmp_path / "pushed.digest"

    started = time.monotonic()
    pushed = skopeo("--debug", "copy", "--dest-cert-dir", stack.ca_dir, "--dest-creds",
                    f"{ADMIN_LOGIN}:{ADMIN_SECRET}", "--digestfile", digest_file,
                    f"oci:{source}:v1", f"docker://127.0.0.1:{stack.admin_port}/{name}:v1")
    push_seconds = time.monotonic() - started
    assert digest_file.read_text().strip() == pushed_digest
    # Every request skopeo made (first URLs, then each Location it followed) went to the public https URL.
    urls = re.findall(r'(?:GET|HEAD|POST|PATCH|PUT) (\S+?)"?\s', pushed.stderr.decode(errors="replace"))
    assert any("/blobs/uploads/" in url for url in urls), pushed.stderr.decode(errors="replace")[-3000:]
    assert {url.split("/v2/")[0] for url in urls if "/v2/" in url} == {stack.admin_url}

    wait_pullable(stack, name, "v1", pushed_digest)
    pulled = tmp_path / "pulled"
    started = time.monotonic()
    skopeo("copy", "--src-cert-dir", stack.ca_dir, f"docker://127.0.0.1:{stack.pull_port}/{name}:v1",
           f"oci:{pulled}:v1")
    pull_seconds = time.monotonic() - started

    source_digest, source_manifest = layout_manifest(source, "v1")
    pulled_digest, pulled_manifest = layout_manifest(pulled, "v1")
    assert pulled_digest == source_digest == pushed_digest
    assert [entry["digest"] for entry in pulled_manifest["layers"]] == \
        [entry["digest"] for entry in source_manifest["layers"]]
    big_digest = sha256(big)
    assert (pulled / "blobs" / "sha256" / big_digest.split(":")[1]).stat().st_size == len(big)
    print(f"100 MiB image through nginx: push {push_seconds:.1f} s, pull {pull_seconds:.1f} s")

    # The blob left through X-Accel-Redirect: nginx's own ETag, the registry headers set again, Range works.
    response = requests.get(f"{stack.pull_url}/v2/{name}/blobs/{big_digest}", headers={"Range": "bytes=10-1033"},
                            verify=stack.ca_file, timeout=30)
    assert response.status_code == 206 and response.content == big[10:1034]
    assert response.headers["Docker-Content-Digest"] == big_digest
    assert response.headers["Cache-Control"].startswith("public")
    assert not response.headers["ETag"].startswith('"sha256:') and "X-Accel-Redirect" not in response.headers


def test_every_location_of_a_push_through_nginx_is_the_public_https_url(stack: Stack):
    client = admin_client(stack)
    seen: list[tuple[str, int, str]] = []
    client.session.hooks["response"].append(
        lambda response, *args, **kwargs: seen.append(
            (response.request.method, response.status_code, response.headers.get("Location", ""))))
    name, data = "nginx/locations", os.urandom(3 * MiB)

    started = client.checked("POST", f"/v2/{name}/blobs/uploads/")
    location = started.headers["Location"]
    for start in range(0, len(data), MiB):
        chunk = data[start:start + MiB]
        location = client.checked("PATCH", location, data=chunk, headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(chunk) - 1}"}).headers["Location"]
    separator = "&" if "?" in location else "?"
    client.checked("PUT", f"{location}{separator}digest={sha256(data)}")
    digest = push_small_image(client, name, "v1")

    with_location = [(method, status, where) for method, status, where in seen if where]
    assert {(method, status) for method, status, _ in with_location} >= {("POST", 202), ("PATCH", 202),
                                                                         ("PUT", 201)}
    for method, status, where in with_location:
        assert where.startswith(f"{stack.admin_url}/v2/{name}/"), (method, status, where)
    wait_pullable(stack, name, "v1", digest)


def test_manifests_by_digest_of_public_repositories_are_served_from_the_nginx_cache(stack: Stack):
    name = "nginx/cached"
    digest = push_small_image(admin_client(stack), name, "v1")
    wait_pullable(stack, name, "v1", digest)

    def get(reference: str, **headers: str) -> requests.Response:
        return requests.get(f"{stack.pull_url}/v2/{name}/manifests/{reference}", headers={**ACCEPT, **headers},
                            verify=stack.ca_file, timeout=10)

    first, second = get(digest), get(digest)
    assert first.status_code == second.status_code == 200
    assert first.headers["X-Cache-Status"] in ("MISS", "HIT")
    assert second.headers["X-Cache-Status"] == "HIT"
    assert sha256(second.content) == digest and second.headers["Docker-Content-Digest"] == digest
    assert second.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert get(digest, Authorization="Bearer not-a-token").headers["X-Cache-Status"] == "HIT"
    # By tag: revalidated at Crane every time, never cached.
    for _ in range(2):
        by_tag = get("v1")
        assert by_tag.status_code == 200 and by_tag.headers.get("X-Cache-Status") is None


def test_protected_manifests_and_refusals_are_never_cached(stack: Stack):
    name = "nginx/secret"
    admin = admin_client(stack)
    created = admin.request("POST", f"{stack.admin_url}/pulp/api/v2/repositories/", auth=(ADMIN_LOGIN, ADMIN_SECRET),
                            json={"name": name, "protected": True})
    assert created.status_code == 201, created.text
    digest = push_small_image(admin, name, "v1")
    puller = admin_client(stack, stack.pull_url)   # fetches its token from the pull server's /token
    wait_pullable(stack, name, "v1", digest, client=puller)

    url = f"{stack.pull_url}/v2/{name}/manifests/{digest}"
    for _ in range(2):
        allowed = puller.request("GET", url, headers=ACCEPT)
        assert allowed.status_code == 200 and sha256(allowed.content) == digest
        assert allowed.headers["Cache-Control"].startswith("private")
        assert allowed.headers["X-Cache-Status"] == "MISS"
    for _ in range(2):
        refused = requests.get(url, headers=ACCEPT, verify=stack.ca_file, timeout=10)
        assert refused.status_code == 401 and refused.headers["X-Cache-Status"] == "MISS"
        assert refused.headers["WWW-Authenticate"].startswith(f'Bearer realm="{stack.pull_url}/token"')


def test_with_anonymous_pull_off_crane_marks_even_unprotected_content_private(stack: Stack):
    """Else nginx would cache it as public and hand it to callers without a token."""
    name = "nginx/closed"
    digest = push_small_image(admin_client(stack), name, "v1")
    wait_pullable(stack, name, "v1", digest)
    port = free_port()
    stack.run_crane("crane-closed", port, anonymous_pull="false", token_realm=f"{stack.admin_url}/token")
    closed = admin_client(stack, f"http://127.0.0.1:{port}")
    try:
        manifest = closed.request("GET", f"/v2/{name}/manifests/{digest}", headers=ACCEPT)
        assert manifest.status_code == 200 and manifest.headers["Cache-Control"].startswith("private")
        blob = closed.request("GET", f"/v2/{name}/blobs/{manifest.json()['layers'][0]['digest']}")
        assert blob.status_code == 200 and blob.headers["Cache-Control"].startswith("private")
        assert blob.headers["X-Accel-Redirect"].startswith("/_published_blobs/sha256/")
        # The same Crane settings with anonymous pull on: public, and nginx caches it.
        opened = requests.get(f"{stack.pull_url}/v2/{name}/manifests/{digest}", headers=ACCEPT,
                              verify=stack.ca_file, timeout=10)
        assert opened.headers["Cache-Control"].startswith("public")
    finally:
        stack.stop_one("crane-closed")
