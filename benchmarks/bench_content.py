"""The content both registries serve in the pull benchmark, built locally with no network.

Three repositories, byte-identical in both registries (checked after loading):

- ``bench/app:latest``: a small image built with umoci (as ``tests/images.py`` does),
  pushed to distribution with ``skopeo copy oci:... docker://...``;
- ``bench/big:latest``: one 100 MiB layer of random data (an uncompressed tar, so
  nothing recompresses it) and its config, pushed over HTTP;
- ``bench/tags``: 10,000 tags over four small manifests that share ``bench/app``'s
  layer, pushed as 10,000 manifest PUTs over HTTP from a thread pool.

Crane gets the same bytes in-process: ``pulp_registry.content`` into content
storage and a throwaway mongomock database, then ``publish_repository`` writes
the published tree ``crane`` serves.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.images import build_oci_layout, layout_blob, layout_manifest  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
BIG_BLOB_SIZE = 100 * 1024 * 1024
TAG_COUNT = 10_000
TAG_MANIFESTS = 4
PUSH_THREADS = 8

Say = Callable[[str], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


@dataclass
class Image:
    """One manifest and the files of the blobs it names (config and layers)."""

    manifest: bytes
    media_type: str
    blobs: dict[str, Path]

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    def layer_digests(self) -> list[str]:
        return [layer["digest"] for layer in json.loads(self.manifest)["layers"]]


@dataclass
class Repository:
    name: str
    images: list[Image]
    #: tag -> index into ``images``
    tags: dict[str, int]
    #: an OCI layout holding ``images[0]`` as ``latest``, pushed to distribution with skopeo
    layout: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _write_blob(directory: Path, data: bytes) -> tuple[str, Path]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = directory / digest.split(":", 1)[1]
    path.write_bytes(data)
    return digest, path


def _oci_manifest(config: tuple[str, Path], layers: list[tuple[str, int, str]]) -> bytes:
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config[0], "size": config[1].stat().st_size},
                "layers": [{"mediaType": media_type, "digest": digest, "size": size}
                           for digest, size, media_type in layers]}
    return json.dumps(document, separators=(",", ":")).encode()


def _random_layer_tar(path: Path, size: int) -> None:
    """An uncompressed tar of exactly ``size`` bytes holding one file of random data."""
    payload = size - 512 - 1024  # one header block, the data, two end blocks (a multiple of 10240 here)
    info = tarfile.TarInfo("payload.bin")
    info.size, info.mode, info.mtime = payload, 0o644, 0

    class _Random(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = os.urandom(len(buffer))
            buffer[:len(data)] = data
            return len(data)

    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(info, io.BufferedReader(_Random(), 1 << 20))
    if path.stat().st_size != size:
        raise RuntimeError(f"{path} is {path.stat().st_size} bytes, not {size}")


def build_content(workdir: Path, say: Say) -> list[Repository]:
    """The three benchmark repositories, their blobs as files under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    blob_dir = workdir / "blobs"
    blob_dir.mkdir(exist_ok=True)

    say("building bench/app with umoci")
    layout = build_oci_layout(workdir / "layouts", "latest")
    app_digest, app_manifest = layout_manifest(layout, "latest")
    layout_blobs = layout / "blobs" / "sha256"
    app = Image(layout_blob(layout, app_digest), app_manifest.get("mediaType", OCI_MANIFEST),
                {d: layout_blobs / d.split(":", 1)[1]
                 for d in [app_manifest["config"]["digest"]] + [layer["digest"] for layer in app_manifest["layers"]]})

    say(f"writing the {BIG_BLOB_SIZE // (1024 * 1024)} MiB random layer")
    big_tmp = blob_dir / "big-layer.tmp"
    _random_layer_tar(big_tmp, BIG_BLOB_SIZE)
    big_digest = sha256_file(big_tmp)
    big_path = blob_dir / big_digest.split(":", 1)[1]
    big_tmp.rename(big_path)
    big_config = _write_blob(blob_dir, json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [big_digest]}}, separators=(",", ":")).encode())
    big = Image(_oci_manifest(big_config, [(big_digest, BIG_BLOB_SIZE, OCI_LAYER_TAR)]), OCI_MANIFEST,
                {big_config[0]: big_config[1], big_digest: big_path})

    app_config = json.loads(layout_blob(layout, app_manifest["config"]["digest"]))
    variants = []
    for number in range(TAG_MANIFESTS):
        config = dict(app_config, config=dict(app_config.get("config") or {}, Labels={"bench.variant": str(number)}))
        config_blob = _write_blob(blob_dir, json.dumps(config, separators=(",", ":")).encode())
        layers = [(layer["digest"], layer["size"], layer["mediaType"]) for layer in app_manifest["layers"]]
        blobs = {config_blob[0]: config_blob[1], **{d: layout_blobs / d.split(":", 1)[1] for d, _, _ in layers}}
        variants.append(Image(_oci_manifest(config_blob, layers), OCI_MANIFEST, blobs))
    tags = {f"v{number:05d}": number % TAG_MANIFESTS for number in range(TAG_COUNT)}
    return [Repository("bench/app", [app], {"latest": 0}, layout=layout),
            Repository("bench/big", [big], {"latest": 0}),
            Repository("bench/tags", variants, tags)]


# --- into distribution, over HTTP ------------------------------------------------------

def _push_blob(session: requests.Session, base: str, name: str, digest: str, path: Path) -> None:
    if session.head(f"{base}/v2/{name}/blobs/{digest}", timeout=30).status_code == 200:
        return
    started = session.post(f"{base}/v2/{name}/blobs/uploads/", timeout=30)
    if started.status_code != 202:
        raise RuntimeError(f"upload start for {name}: {started.status_code} {started.text[:300]}")
    location = started.headers["Location"]
    location = location if location.startswith("http") else base + location
    separator = "&" if "?" in location else "?"
    with path.open("rb") as body:
        done = session.put(f"{location}{separator}digest={digest}", data=body, timeout=300,
                           headers={"Content-Type": "application/octet-stream",
                                    "Content-Length": str(path.stat().st_size)})
    if done.status_code != 201:
        raise RuntimeError(f"upload of {digest} to {name}: {done.status_code} {done.text[:300]}")


def _put_manifest(session: requests.Session, base: str, name: str, reference: str, image: Image) -> None:
    response = session.put(f"{base}/v2/{name}/manifests/{reference}", data=image.manifest, timeout=60,
                           headers={"Content-Type": image.media_type})
    if response.status_code != 201:
        raise RuntimeError(f"manifest PUT {name}:{reference}: {response.status_code} {response.text[:300]}")


def push_to_distribution(base: str, repositories: list[Repository], say: Say) -> None:
    """skopeo for the umoci layout; HTTP for the big blob and the 10,000 tags."""
    host = base.split("://", 1)[1]
    session = requests.Session()
    for repo in repositories:
        if repo.layout is not None:
            say(f"distribution: skopeo copy oci:... docker://{host}/{repo.name}:latest")
            subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                            f"oci:{repo.layout}:latest", f"docker://{host}/{repo.name}:latest"],
                           check=True, capture_output=True)
            continue
        for image in repo.images:
            for digest, path in image.blobs.items():
                _push_blob(session, base, repo.name, digest, path)
            _put_manifest(session, base, repo.name, image.digest, image)
        _push_tags(base, repo, say)


def _push_tags(base: str, repo: Repository, say: Say) -> None:
    local = threading.local()
    done = [0]
    lock = threading.Lock()
    started = time.monotonic()

    def put(tag: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        _put_manifest(local.session, base, repo.name, tag, repo.images[repo.tags[tag]])
        with lock:
            done[0] += 1
            if done[0] % 1000 == 0 or done[0] == len(repo.tags):
                say(f"distribution: {repo.name}: {done[0]}/{len(repo.tags)} tags "
                    f"({time.monotonic() - started:.0f}s)")

    with ThreadPoolExecutor(PUSH_THREADS) as pool:
        for _ in pool.map(put, sorted(repo.tags)):
            pass


# --- into Crane, in-process --------------------------------------------------------------

def load_into_crane(data_dir: Path, repositories: list[Repository], say: Say) -> Path:
    """Store the content with ``pulp_registry.content`` (mongomock), publish it; return the published tree."""
    from pulp_registry import content, oci
    from pulp_registry.config import Settings
    from pulp_registry.db import utcnow
    from pulp_registry.publish import publish_repository
    from pulp_registry.repositories import ensure_repository
    from pulp_registry.services import build_services

    settings = Settings(data_dir=str(data_dir), mongo_url="mongomock://", broker_url="memory://")
    services = build_services(settings)
    for repo in repositories:
        record = ensure_repository(services.db, repo.name)
        for image in repo.images:
            for digest, path in image.blobs.items():
                size = path.stat().st_size
                if not services.storage.exists(digest):
                    with path.open("rb") as source:
                        services.storage.put_stream(source, digest, size)
                content.add_blob(services, record, digest, size)
            content.store_manifest(services, record, image.manifest, image.media_type, image.digest)
        if len(repo.tags) <= 100:
            for tag, index in repo.tags.items():
                content.set_tag(services.db, record["_id"], tag, repo.images[index].digest)
        else:
            # mongomock checks a unique index by scanning the collection, so 10,000 set_tag calls
            # take minutes; insert the documents set_tag writes in one go (names are unique here).
            now = utcnow()
            for tag in repo.tags:
                oci.validate_tag(tag)
            services.db.tags.drop_indexes()
            services.db.tags.insert_many([{"repo_id": record["_id"], "name": tag, "manifest_digest":
                                           repo.images[index].digest, "updated": now}
                                          for tag, index in repo.tags.items()])
        result = publish_repository(services, record["_id"])
        say(f"crane: published {repo.name}: {result['tags']} tags, {result['manifests']} manifests, "
            f"{result['blobs']} blobs")
    return Path(settings.published_dir)


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
