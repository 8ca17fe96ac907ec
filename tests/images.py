"""Test images built from files on disk with umoci and skopeo (no network).

Every helper writes what a real tool would write, so tests push what users
push: an OCI image layout (``umoci``), a legacy ``docker save`` archive
(``skopeo copy ... docker-archive:``), the OCI-layout archive Docker 25+
``docker save`` writes (built here from the layout, layers uncompressed as
Docker keeps them), a tar of an OCI layout, and a multi-arch OCI index.
The reading helpers give the digests a test compares after a pull.

umoci and skopeo are required: a missing tool fails the test (CI installs them).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"


def run_tool(*args: str | os.PathLike[str], input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run umoci/skopeo; raise with the tool's own output when it fails."""
    argv = [str(a) for a in args]
    if shutil.which(argv[0]) is None:
        raise RuntimeError(f"{argv[0]} is not installed; the test command installs it (apt-get install {argv[0]})")
    proc = subprocess.run(argv, input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                           f"{proc.stdout.decode(errors='replace')}\n{proc.stderr.decode(errors='replace')}")
    return proc


def skopeo(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    """``skopeo --insecure-policy ARGS`` (test images carry no signatures)."""
    return run_tool("skopeo", "--insecure-policy", *args)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _umoci(*args: str | os.PathLike[str]) -> None:
    rootless = ("--rootless",) if os.geteuid() != 0 else ()
    command, *rest = args
    if command == "unpack" and rootless:
        run_tool("umoci", command, *rootless, *rest)
    else:
        run_tool("umoci", command, *rest)


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    for relative, content in files.items():
        target = (root / relative.lstrip("/")).resolve()
        if root.resolve() not in target.parents:
            raise ValueError(f"layer file {relative!r} is outside the image root")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def build_oci_layout(workdir: Path, tag: str = "latest", layers: list[dict[str, bytes]] | None = None,
                     architecture: str | None = None) -> Path:
    """Build one image into a new OCI image layout under ``workdir``; return the layout dir.

    ``layers`` holds one dict per layer (path in the image -> bytes). By default
    one small layer with a unique file, so every call yields distinct digests.
    The tag is recorded as ``org.opencontainers.image.ref.name`` in index.json.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    unique = uuid.uuid4().hex
    layout = workdir / f"oci-{unique[:12]}"
    if layers is None:
        layers = [{"etc/test-image-id": f"{unique}\n".encode(), "hello.txt": b"hello from a test image\n"}]
    image = f"{layout}:{tag}"
    _umoci("init", "--layout", layout)
    _umoci("new", "--image", image)
    if architecture:
        _umoci("config", "--image", image, "--architecture", architecture)
    for number, files in enumerate(layers):
        bundle = workdir / f"bundle-{unique[:12]}-{number}"
        _umoci("unpack", "--image", image, bundle)
        _write_files(bundle / "rootfs", files)
        _umoci("repack", "--image", image, bundle)
        shutil.rmtree(bundle)
    _umoci("gc", "--layout", layout)
    return layout


# --- reading layouts and skopeo dir: copies ---------------------------------------------


def layout_blob(layout: Path, digest: str) -> bytes:
    algorithm, hexdigest = digest.split(":", 1)
    return (Path(layout) / "blobs" / algorithm / hexdigest).read_bytes()


def layout_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    """The index.json entry tagged ``tag``."""
    index = json.loads((Path(layout) / "index.json").read_text())
    for descriptor in index["manifests"]:
        if (descriptor.get("annotations") or {}).get(REF_NAME) == tag:
            return descriptor
    raise KeyError(f"no image tagged {tag!r} in {layout}/index.json")


def layout_manifest_bytes(layout: Path, tag: str) -> bytes:
    return layout_blob(layout, layout_descriptor(layout, tag)["digest"])


def layout_manifest(layout: Path, tag: str) -> tuple[str, dict[str, Any]]:
    """``(manifest_digest, manifest)`` of the image (or index) tagged ``tag`` in an OCI layout."""
    descriptor = layout_descriptor(layout, tag)
    raw = layout_blob(layout, descriptor["digest"])
    assert sha256_digest(raw) == descriptor["digest"]
    return descriptor["digest"], json.loads(raw)


def layer_digests(manifest: dict[str, Any]) -> list[str]:
    return [layer["digest"] for layer in manifest.get("layers", [])]


def dir_manifest_bytes(dir_path: Path) -> bytes:
    return (Path(dir_path) / "manifest.json").read_bytes()


def dir_manifest_digest(dir_path: Path) -> str:
    """Digest of the manifest in a ``skopeo copy ... dir:PATH`` copy (sha256 of manifest.json)."""
    return sha256_digest(dir_manifest_bytes(dir_path))


def dir_blob(dir_path: Path, digest: str) -> bytes:
    """A blob of a ``dir:`` copy, checked against its digest (skopeo names files by hex)."""
    data = (Path(dir_path) / digest.split(":", 1)[1]).read_bytes()
    assert sha256_digest(data) == digest, f"{dir_path}: blob {digest} does not match its name"
    return data


def config_diff_ids(config: bytes | dict[str, Any]) -> list[str]:
    """``rootfs.diff_ids`` of an image config: the digests of the uncompressed layers."""
    doc = json.loads(config) if isinstance(config, bytes) else config
    return list(doc["rootfs"]["diff_ids"])


@dataclass(frozen=True)
class ImageDigests:
    """What a test compares between what it pushed and what it pulled."""

    manifest_digest: str
    config_digest: str | None
    layer_digests: tuple[str, ...]
    diff_ids: tuple[str, ...]


def _image_digests(manifest_raw: bytes, read_blob) -> ImageDigests:
    manifest = json.loads(manifest_raw)
    config_digest = manifest.get("config", {}).get("digest")
    diff_ids = tuple(config_diff_ids(read_blob(config_digest))) if config_digest else ()
    return ImageDigests(sha256_digest(manifest_raw), config_digest, tuple(layer_digests(manifest)), diff_ids)


def manifest_digests(path: Path, tag: str | None = None) -> ImageDigests:
    """Digests of an image in a ``dir:`` copy (no tag) or an OCI layout (with ``tag``)."""
    path = Path(path)
    if tag is None:
        return _image_digests(dir_manifest_bytes(path), lambda d: dir_blob(path, d))
    return _image_digests(layout_manifest_bytes(path, tag), lambda d: layout_blob(path, d))


# --- archives -------------------------------------------------------------------------


def docker_archive_from_layout(layout: Path, tag: str, dest: Path, reference: str) -> Path:
    """A legacy ``docker save`` tar (manifest.json, <hex>.json config, <hex>.tar layers) via skopeo."""
    dest = Path(dest)
    dest.unlink(missing_ok=True)
    skopeo("copy", f"oci:{layout}:{tag}", f"docker-archive:{dest}:{reference}")
    return dest


def docker_archive_manifest(archive: Path) -> dict[str, Any]:
    """The single entry of a ``docker save`` archive's manifest.json."""
    with tarfile.open(archive) as tar:
        entries = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert len(entries) == 1, f"{archive} holds {len(entries)} images"
    return entries[0]


def docker_archive_config(archive: Path) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile(docker_archive_manifest(archive)["Config"]).read()  # type: ignore[union-attr]


def docker_archive_diff_ids(archive: Path) -> list[str]:
    """The layer diff_ids a ``docker save`` archive's image config lists."""
    return config_diff_ids(docker_archive_config(archive))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def docker_oci_archive_from_layout(layout: Path, tag: str, dest: Path, reference: str) -> Path:
    """The tar Docker 25+ ``docker save`` writes, built from an OCI layout.

    An OCI layout (oci-layout, index.json, blobs/sha256/...) whose layers are
    uncompressed tars (Docker keeps them so; their digests are the diff_ids),
    plus a legacy ``manifest.json`` pointing at ``blobs/sha256/<hex>`` paths and
    naming ``reference`` in RepoTags. The config blob is the layout's own.
    """
    _, manifest = layout_manifest(layout, tag)
    config_raw = layout_blob(layout, manifest["config"]["digest"])
    blobs: dict[str, bytes] = {manifest["config"]["digest"]: config_raw}
    layers = []
    for layer in manifest["layers"]:
        data = layout_blob(layout, layer["digest"])
        if layer["mediaType"].endswith("+gzip"):
            data = gzip.decompress(data)
        digest = sha256_digest(data)
        blobs[digest] = data
        layers.append({"mediaType": OCI_LAYER, "digest": digest, "size": len(data)})
    docker_manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": manifest["config"]["mediaType"], "digest": manifest["config"]["digest"],
                   "size": len(config_raw)},
        "layers": layers,
    }
    manifest_raw = json.dumps(docker_manifest, separators=(",", ":")).encode()
    manifest_digest = sha256_digest(manifest_raw)
    blobs[manifest_digest] = manifest_raw
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest_raw),
            "annotations": {"io.containerd.image.name": reference, REF_NAME: reference.rsplit(":", 1)[-1]},
        }],
    }
    legacy = [{
        "Config": "blobs/sha256/" + manifest["config"]["digest"].split(":", 1)[1],
        "RepoTags": [reference],
        "Layers": ["blobs/sha256/" + layer["digest"].split(":", 1)[1] for layer in layers],
    }]
    name, _, tag_part = reference.rpartition(":")
    repositories = {name: {tag_part: manifest_digest.split(":", 1)[1]}}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for digest, data in blobs.items():
            _add_bytes(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)
        _add_bytes(tar, "index.json", json.dumps(index).encode())
        _add_bytes(tar, "manifest.json", json.dumps(legacy).encode())
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "repositories", json.dumps(repositories).encode())
    return dest


def docker_oci_archive_manifest(archive: Path) -> tuple[str, bytes]:
    """``(digest, bytes)`` of the image manifest inside a Docker 25+ archive."""
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        digest = index["manifests"][0]["digest"]
        raw = tar.extractfile("blobs/sha256/" + digest.split(":", 1)[1]).read()  # type: ignore[union-attr]
    return digest, raw


def oci_layout_tar(layout: Path, dest: Path) -> Path:
    """A tar of an OCI layout with its files at the tar's root (as ``tar -C layout -cf dest .``)."""
    layout, dest = Path(layout), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w") as tar:
        for path in sorted(layout.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return dest


# --- multi-arch -----------------------------------------------------------------------


def build_oci_index_layout(workdir: Path, tag: str = "latest",
                           architectures: Iterable[str] = ("amd64", "arm64")) -> Path:
    """An OCI layout whose ``tag`` names an OCI index of one image per architecture."""
    workdir = Path(workdir)
    layout = workdir / f"oci-index-{uuid.uuid4().hex[:12]}"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    children = []
    for architecture in architectures:
        image = build_oci_layout(workdir, tag, architecture=architecture,
                                 layers=[{f"etc/arch-{architecture}": f"{architecture} {uuid.uuid4().hex}\n".encode()}])
        for blob in (image / "blobs" / "sha256").iterdir():
            shutil.copyfile(blob, layout / "blobs" / "sha256" / blob.name)
        descriptor = layout_descriptor(image, tag)
        children.append({"mediaType": OCI_MANIFEST, "digest": descriptor["digest"], "size": descriptor["size"],
                         "platform": {"architecture": architecture, "os": "linux"}})
    index_raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children},
                           separators=(",", ":")).encode()
    index_digest = sha256_digest(index_raw)
    (layout / "blobs" / "sha256" / index_digest.split(":", 1)[1]).write_bytes(index_raw)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_INDEX, "digest": index_digest, "size": len(index_raw), "annotations": {REF_NAME: tag},
    }]}))
    return layout


def index_child_digests(index: dict[str, Any]) -> list[str]:
    return [child["digest"] for child in index["manifests"]]
