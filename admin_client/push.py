"""The registry-protocol push client: blobs the server lacks, then manifests, then wait for publish.

Speaks to ``/v2/`` on the admin URL with the same Basic credentials as the
REST API. Blobs go up monolithically (POST for a session, then one streamed
PUT with ``?digest=``); manifests are sent as the exact bytes read from the
archive, children before their index, so their digests are preserved.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any, Callable, Collection
from urllib.parse import urlsplit, urlunsplit

import click

from admin_client.archives import Blob, Image
from admin_client.connection import AdminClient, AdminError
from admin_client.reference import Reference
from admin_client.tasks import wait_for_task

UPLOAD_CHUNK = 1024 * 1024


@dataclass
class PushResult:
    manifest_digest: str
    uploaded: int
    present: int
    uploaded_bytes: int
    task: dict[str, Any] | None
    mounted: int = 0


class _ProgressReader:
    """A file wrapper with a length, so requests streams it with Content-Length and reports each chunk."""

    def __init__(self, handle: IO[bytes], size: int, advance: Callable[[int], None]) -> None:
        self.handle = handle
        self.size = size
        self.advance = advance

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        chunk = self.handle.read(UPLOAD_CHUNK if amount is None or amount < 0 else amount)
        if chunk:
            self.advance(len(chunk))
        return chunk


def short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def with_query(location: str, **params: str) -> str:
    """Add query parameters to an upload ``Location`` that may already carry some."""
    parts = urlsplit(location)
    extra = "&".join(f"{key}={value}" for key, value in params.items())
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


class Pusher:
    def __init__(self, client: AdminClient, reference: Reference, verbose: int = 0) -> None:
        self.client = client
        self.reference = reference
        self.verbose = verbose

    def _say(self, message: str, level: int = 0) -> None:
        if self.verbose >= level:
            click.echo(message, err=True)

    def check_access(self) -> None:
        """``GET /v2/``: the server speaks the registry protocol and takes our credentials. (Crane's
        pull port answers it too; its refusal of the first upload says which port it is.)"""
        self.client.request("GET", "/v2/")

    def blob_present(self, digest: str) -> bool:
        response = self.client.request("HEAD", f"/v2/{self.reference.name}/blobs/{digest}", expected=(200, 404))
        return response.status_code == 200

    def upload_blob(self, blob: Blob, advance: Callable[[int], None], configs: Collection[str] = ()) -> bool:
        """Send ``blob``; true if the server mounted a copy it already held instead."""
        self._say(f"Uploading {blob_kind(blob, configs)} {short_digest(blob.digest)} ({human_size(blob.size)})",
                  level=2)
        name = self.client.url(f"/v2/{self.reference.name}/blobs/uploads/")
        # OCI 1.1: a mount without ``from`` lets a registry reuse a blob it holds elsewhere (201);
        # otherwise it opens an ordinary session (202).
        started = self.client.request("POST", with_query(name, mount=blob.digest), expected=(201, 202))
        if started.status_code == 201:
            advance(blob.size)
            self._say(f"Mounted {blob_kind(blob, configs)} {short_digest(blob.digest)} (not sent)", level=2)
            return True
        location = started.headers.get("Location")
        if not location:
            raise AdminError(f"the server opened an upload for {self.reference.name} without a Location")
        target = with_query(self.client.url(location), digest=blob.digest)
        with blob.open() as handle:
            body = _ProgressReader(handle, blob.size, advance)
            self.client.request("PUT", target, expected=(201,), data=body,
                                headers={"Content-Type": "application/octet-stream",
                                         "Content-Length": str(blob.size)})
        return False

    def put_manifest(self, raw: bytes, media_type: str, reference: str, digest: str) -> dict[str, str]:
        response = self.client.request(
            "PUT", f"/v2/{self.reference.name}/manifests/{reference}", expected=(200, 201, 202),
            data=raw, headers={"Content-Type": media_type})
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            raise AdminError(f"the server stored manifest {reference} as {answered}, expected {digest}")
        return dict(response.headers)

    def wait_for_task(self, href: str, timeout: float) -> dict[str, Any]:
        self._say("Waiting for the publish task ...", level=0)
        return wait_for_task(self.client, href, timeout, what="publish task")

    def pull_reference(self) -> str:
        """``<pull_host>/<name>:<tag>``: where users pull from is Crane's host, which the status call names."""
        return f"{self.client.pull_host()}/{self.reference.name}:{self.reference.tag}"

    def push(self, image: Image, wait: bool = True, timeout: float = 300.0) -> PushResult:
        """Blobs the repository lacks (sent, or mounted when the registry holds them elsewhere), then
        manifests, then the publish. The messages tell one story: how many blobs were already present,
        how many were sent, how many mounted (not sent)."""
        self.check_access()
        configs = config_digests(image)
        missing: list[Blob] = []
        for blob in image.blobs:
            if self.blob_present(blob.digest):
                self._say(f"{blob_kind(blob, configs).capitalize()} {short_digest(blob.digest)} "
                          "already present", level=1)
            else:
                missing.append(blob)
        present = len(image.blobs) - len(missing)
        total = sum(blob.size for blob in missing)
        mounted: list[Blob] = []
        if not missing:
            self._say(f"All {len(image.blobs)} blobs already present in {self.reference.name}; nothing to upload.")
        else:
            self._say(f"{len(missing)} of {len(image.blobs)} blobs ({human_size(total)}) are not in "
                      f"{self.reference.name} yet; {present} already present.")
            with click.progressbar(length=total, label=f"Pushing {self.reference.name}", file=sys.stderr,
                                   show_pos=False, show_percent=True) as bar:
                mounted = [blob for blob in missing if self.upload_blob(blob, bar.update, configs)]
            self._say(blob_summary(len(missing) - len(mounted), total - sum(b.size for b in mounted),
                                   len(mounted), present))
        headers: dict[str, str] = {}
        for index, manifest in enumerate(image.manifests):
            last = index == len(image.manifests) - 1
            reference = self.reference.tag if last else manifest.digest
            headers = self.put_manifest(manifest.raw, manifest.media_type, reference, manifest.digest)
        self._say(f"Pushed {self.reference} ({image.manifest.digest}).")
        task = None
        task_href = headers.get("Pulp-Task")
        if wait and task_href:
            task = self.wait_for_task(task_href, timeout)
        elif wait:
            self._say("The server named no publish task; not waiting for publication.")
        return PushResult(image.manifest.digest, len(missing) - len(mounted), present,
                          total - sum(b.size for b in mounted), task, len(mounted))


def blob_summary(sent: int, sent_bytes: int, mounted: int, present: int) -> str:
    """``Blobs: 1 sent (2.1 MB), 2 mounted from another repository (not sent), 1 already present.``"""
    parts = [f"{sent} sent ({human_size(sent_bytes)})"]
    if mounted:
        parts.append(f"{mounted} mounted from another repository of this registry (not sent)")
    parts.append(f"{present} already present")
    return f"Blobs: {', '.join(parts)}."


def config_digests(image: Image) -> set[str]:
    """The digests the image's manifests name as their config (the rest of the blobs are layers)."""
    digests = set()
    for manifest in image.manifests:
        try:
            doc = json.loads(manifest.raw)
        except ValueError:
            continue
        config = doc.get("config") if isinstance(doc, dict) else None
        if isinstance(config, dict) and isinstance(config.get("digest"), str):
            digests.add(config["digest"])
    return digests


def blob_kind(blob: Blob, configs: Collection[str]) -> str:
    return "config" if blob.digest in configs else "layer"


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


# --- docker save, when there is no archive ----------------------------------------------


def docker_engine_available() -> bool:
    """Whether a Docker engine answers (``docker version`` reaches the server)."""
    if shutil.which("docker") is None:
        return False
    try:
        completed = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                   capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0 and bool(completed.stdout.strip())


def docker_save(reference: str) -> tuple[str, Callable[[], None]]:
    """``docker save`` the image into a private temporary file; return its path and how to remove it."""
    directory = tempfile.mkdtemp(prefix="registry-admin-save-")
    path = os.path.join(directory, "image.tar")
    remove = lambda: shutil.rmtree(directory, ignore_errors=True)  # noqa: E731
    try:
        completed = subprocess.run(["docker", "save", "--output", path, reference], capture_output=True, text=True)
    except OSError as exc:
        remove()
        raise AdminError(f"could not run docker save: {exc}") from None
    if completed.returncode != 0:
        remove()
        reason = (completed.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise AdminError(f"docker save {reference} failed: {reason}")
    return path, remove
