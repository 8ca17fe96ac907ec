"""The legacy ``docker save`` archive turned into a Docker schema 2 image.

``manifest.json`` names the config file and the uncompressed ``layer.tar`` of
each layer. The config is pushed as it is; each layer is gzip-compressed
deterministically (mtime 0, no file name) into a private temporary directory
while its uncompressed sha256 is checked against the config's
``rootfs.diff_ids``: a layer that does not match is refused before anything
is sent.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path
from typing import IO, Any

from admin_client.archives import (CHUNK, MAX_CONFIG_SIZE, ArchiveError, Blob, Image, ManifestToPush, Tree,
                                   clean_member_name, read_json, spool_dir)
from admin_client.reference import name_of, tag_of

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
GZIP_MAGIC = b"\x1f\x8b"


class _HashingWriter:
    """A file wrapper that hashes and counts what goes through it."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


def select_entry(entries: Any, name: str, tag: str, source: str) -> dict[str, Any]:
    """The ``manifest.json`` entry whose RepoTags hold ``name:tag`` (or ``tag``), else the only one."""
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ArchiveError(f"{source}: manifest.json is not a list of images")
    tagged, named = [], []
    for entry in entries:
        repo_tags = [t for t in entry.get("RepoTags") or [] if isinstance(t, str)]
        if any(tag_of(t) == tag for t in repo_tags):
            tagged.append(entry)
        if any(tag_of(t) == tag and (name_of(t) == name or name_of(t).endswith("/" + name)) for t in repo_tags):
            named.append(entry)
    for candidates in (named, tagged):
        if len(candidates) == 1:
            return candidates[0]
    if len(entries) == 1:
        return entries[0]
    available = sorted({t for e in entries for t in e.get("RepoTags") or [] if isinstance(t, str)})
    problem = "several images are" if tagged else "no image is"
    raise ArchiveError(f"{source}: {problem} tagged {tag!r} in this archive (it holds: {', '.join(available)}); "
                       "choose one with --source-ref NAME:TAG or --archive PATH:NAME:TAG")


def read_docker_archive(tree: Tree, name: str, tag: str) -> Image:
    source = tree.source
    _, entries = read_json(tree, "manifest.json")
    entry = select_entry(entries, name, tag, source)
    config_name, layer_names = entry.get("Config"), entry.get("Layers")
    if not isinstance(config_name, str) or not isinstance(layer_names, list) or not all(
            isinstance(n, str) for n in layer_names):
        raise ArchiveError(f"{source}: manifest.json entry has no Config file or Layers list")
    config_name = clean_member_name(config_name, source)
    config_raw, config = read_json(tree, config_name, MAX_CONFIG_SIZE)
    config_digest = f"sha256:{hashlib.sha256(config_raw).hexdigest()}"
    _check_config_name(config_name, config_digest, source)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
        raise ArchiveError(f"{source}: the config's rootfs.diff_ids do not list one entry per layer "
                           f"({len(layer_names)} layers in manifest.json)")

    spool, remove_spool = spool_dir()
    image = Image("docker-archive", [], [], cleanup=[remove_spool])
    try:
        layers: list[Blob] = []
        done: dict[str, Blob] = {}
        for number, (layer_name, diff_id) in enumerate(zip(layer_names, diff_ids)):
            layer_name = clean_member_name(layer_name, source)
            if layer_name not in done:
                done[layer_name] = _layer_blob(tree, layer_name, str(diff_id), spool / f"layer-{number}.tar.gz")
            layers.append(done[layer_name])
        config_blob = Blob(config_digest, len(config_raw), DOCKER_CONFIG, lambda: tree.open(config_name))
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config_raw), "digest": config_digest},
            "layers": [{"mediaType": layer.media_type, "size": layer.size, "digest": layer.digest}
                       for layer in layers],
        }, indent=3).encode()
        unique = {blob.digest: blob for blob in [config_blob, *layers]}
        image.blobs = list(unique.values())
        image.manifests = [ManifestToPush(f"sha256:{hashlib.sha256(manifest).hexdigest()}", DOCKER_MANIFEST,
                                          manifest)]
        return image
    except BaseException:
        image.close()
        raise


def _check_config_name(config_name: str, config_digest: str, source: str) -> None:
    """The config's file name is its id (``<hex>.json`` or ``blobs/sha256/<hex>``): it must match."""
    stem = Path(config_name).name.removesuffix(".json")
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) and config_digest != f"sha256:{stem}":
        raise ArchiveError(f"{source}: config {config_name} does not match its digest "
                           f"(content hashes to {config_digest})")


def _layer_blob(tree: Tree, layer_name: str, diff_id: str, spool_path: Path) -> Blob:
    """Check one layer against its diff_id; compress it to ``spool_path`` unless it already is gzip."""
    source = tree.source
    if not tree.exists(layer_name):
        raise ArchiveError(f"{source}: layer {layer_name} is missing")
    with tree.open(layer_name) as handle:
        already_gzip = handle.read(2) == GZIP_MAGIC
    if already_gzip:
        uncompressed = hashlib.sha256()
        raw = hashlib.sha256()
        size = 0
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        with tree.open(layer_name) as handle:
            try:
                while chunk := handle.read(CHUNK):
                    raw.update(chunk)
                    size += len(chunk)
                    uncompressed.update(decompressor.decompress(chunk))
                uncompressed.update(decompressor.flush())
            except zlib.error as exc:
                raise ArchiveError(f"{source}: layer {layer_name} is not valid gzip ({exc})") from None
        _check_diff_id(layer_name, f"sha256:{uncompressed.hexdigest()}", diff_id, source)
        return Blob(f"sha256:{raw.hexdigest()}", size, DOCKER_LAYER, lambda: tree.open(layer_name))
    uncompressed = hashlib.sha256()
    with open(spool_path, "wb") as target:
        writer = _HashingWriter(target)
        with gzip.GzipFile(filename="", mode="wb", fileobj=writer, mtime=0, compresslevel=6) as compressor, \
                tree.open(layer_name) as handle:
            while chunk := handle.read(CHUNK):
                uncompressed.update(chunk)
                compressor.write(chunk)
    _check_diff_id(layer_name, f"sha256:{uncompressed.hexdigest()}", diff_id, source)
    return Blob(writer.digest, writer.size, DOCKER_LAYER, lambda: open(spool_path, "rb"))


def _check_diff_id(layer_name: str, actual: str, diff_id: str, source: str) -> None:
    if actual != diff_id:
        raise ArchiveError(f"{source}: layer {layer_name} does not match its digest in the config "
                           f"(diff_id {diff_id}, content hashes to {actual})")
