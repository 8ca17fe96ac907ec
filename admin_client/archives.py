"""Reading image archives safely: what to push, verified before anything is sent.

Four kinds are understood: the legacy ``docker save`` tar (``manifest.json`` +
``<id>/layer.tar``), the OCI-layout tar newer Docker writes (``oci-layout`` +
``index.json`` + ``blobs/`` + ``manifest.json``), an OCI image layout
directory, and an OCI image layout as a tar. Nothing is ever extracted: files
are read through a ``Tree`` that refuses absolute paths, ``..`` components and
links leaving the root. ``open_image`` returns an ``Image`` whose every blob
and manifest has already been checked against its digest and size.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Protocol

from admin_client.reference import name_of, tag_of

CHUNK = 1024 * 1024
MAX_JSON_SIZE = 4 * 1024 * 1024
MAX_CONFIG_SIZE = 16 * 1024 * 1024
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
LIST_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class ArchiveError(Exception):
    """An archive that cannot be pushed as it is; the message says why, in one line."""


@dataclass
class Blob:
    digest: str
    size: int
    media_type: str
    open: Callable[[], IO[bytes]]


@dataclass
class ManifestToPush:
    digest: str
    media_type: str
    raw: bytes


@dataclass
class Image:
    """A verified image: blobs to upload, then manifests in push order (children before their index)."""

    kind: str
    blobs: list[Blob]
    manifests: list[ManifestToPush]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def manifest(self) -> ManifestToPush:
        """The manifest the tag points at (pushed last)."""
        return self.manifests[-1]

    def close(self) -> None:
        for action in reversed(self.cleanup):
            action()
        self.cleanup.clear()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --- file trees: a directory or a tar, read without extracting ------------------------


def clean_member_name(name: str, where: str) -> str:
    """A relative path inside the archive, or ``ArchiveError`` for one that leaves it."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{where}: refusing absolute path {name!r}")
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"{where}: refusing path {name!r} with a '..' component")
    return "/".join(parts)


class Tree(Protocol):
    source: str

    def exists(self, name: str) -> bool: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> IO[bytes]: ...
    def close(self) -> None: ...


class DirTree:
    """An image layout directory; symlinks must stay inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.source = str(root)
        for dirpath, dirnames, filenames in os.walk(self.root):
            for entry in dirnames + filenames:
                path = Path(dirpath, entry)
                if path.is_symlink():
                    self._inside(path, f"link {path.relative_to(self.root)}")

    def _inside(self, path: Path, what: str) -> Path:
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            raise ArchiveError(f"{self.source}: {what} points outside the layout")
        return real

    def _path(self, name: str) -> Path:
        name = clean_member_name(name, self.source)
        return self._inside(self.root / name, name)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._path(name).stat().st_size

    def open(self, name: str) -> IO[bytes]:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise ArchiveError(f"{self.source}: {name} is missing") from None

    def close(self) -> None:
        pass


class TarTree:
    """A tar archive (plain or compressed); every entry is checked when it is opened."""

    def __init__(self, path: Path) -> None:
        self.source = str(path)
        try:
            self.tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, EOFError, OSError):
            raise ArchiveError(f"{path} is not an image archive "
                               "(neither a tar file nor an image layout directory)") from None
        try:
            members = self.tar.getmembers()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            self.tar.close()
            raise ArchiveError(f"{path} is truncated or corrupt: the tar ends early or is damaged "
                               f"({str(exc) or exc.__class__.__name__}); save or copy it again") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in members:
            name = clean_member_name(member.name, self.source)
            if member.issym():
                if member.linkname.startswith("/"):
                    raise ArchiveError(f"{self.source}: link {member.name!r} points to absolute path "
                                       f"{member.linkname!r}")
                target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                if target == ".." or target.startswith("../"):
                    raise ArchiveError(f"{self.source}: link {member.name!r} points outside the archive")
            elif member.islnk():
                clean_member_name(member.linkname, self.source)
            elif not (member.isfile() or member.isdir()):
                raise ArchiveError(f"{self.source}: refusing special file {member.name!r}")
            self.members[name] = member

    def _member(self, name: str) -> tarfile.TarInfo | None:
        name = clean_member_name(name, self.source)
        for _ in range(16):
            member = self.members.get(name)
            if member is None or member.isfile() or member.isdir():
                return member
            if member.issym():
                name = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            else:
                name = clean_member_name(member.linkname, self.source)
        raise ArchiveError(f"{self.source}: too many levels of links at {name!r}")

    def exists(self, name: str) -> bool:
        member = self._member(name)
        return member is not None and member.isfile()

    def size(self, name: str) -> int:
        member = self._member(name)
        if member is None or not member.isfile():
            raise ArchiveError(f"{self.source}: {name} is missing")
        return member.size

    def open(self, name: str) -> IO[bytes]:
        member = self._member(name)
        if member is None or not member.isfile():
            raise ArchiveError(f"{self.source}: {name} is missing")
        handle = self.tar.extractfile(member)
        assert handle is not None
        return handle

    def close(self) -> None:
        self.tar.close()


def read_json(tree: Tree, name: str, limit: int = MAX_JSON_SIZE) -> tuple[bytes, Any]:
    if not tree.exists(name):
        raise ArchiveError(f"{tree.source}: {name} is missing")
    if tree.size(name) > limit:
        raise ArchiveError(f"{tree.source}: {name} is larger than {limit} bytes")
    with tree.open(name) as handle:
        raw = handle.read(limit + 1)
    try:
        return raw, json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchiveError(f"{tree.source}: {name} is not valid JSON ({exc})") from None


# --- finding the image and what it needs ------------------------------------------------


def open_image(path: str | os.PathLike[str], name: str, tag: str, source_ref: str | None = None) -> Image:
    """Read and verify the image tagged ``tag`` (or named ``source_ref``, or the only image) from an archive."""
    path = Path(path)
    if not path.exists():
        raise ArchiveError(f"{path}: no such file or directory")
    tree: Tree = DirTree(path) if path.is_dir() else TarTree(path)
    try:
        image = _read_tree(tree, path, name, tag, source_ref)
    except BaseException:
        tree.close()
        raise
    image.cleanup.insert(0, tree.close)
    return image


def _read_tree(tree: Tree, path: Path, name: str, tag: str, source_ref: str | None) -> Image:
    from admin_client import legacy  # the docker-save-to-schema-2 conversion lives on its own

    if tree.exists("oci-layout") and tree.exists("index.json"):
        if path.is_dir():
            kind = "oci-layout"
        else:
            kind = "docker-archive (OCI layout)" if tree.exists("manifest.json") else "oci-layout tar"
        return read_oci_layout(tree, kind, name, tag, source_ref)
    if tree.exists("manifest.json"):
        if source_ref is not None:  # docker save names images NAME:TAG in RepoTags
            name, tag = (name_of(source_ref), tag_of(source_ref)) if tag_of(source_ref) else (name, source_ref)
        return legacy.read_docker_archive(tree, name, str(tag))
    raise ArchiveError(f"{path} is not an image archive: neither an OCI image layout (oci-layout, index.json) "
                       "nor docker save output (manifest.json)")


def _matches(reference: str, name: str, tag: str) -> tuple[bool, bool]:
    """(tag matches, name matches too) for an annotation value that is a tag or a full reference."""
    ref_tag = tag_of(reference) if ("/" in reference or ":" in reference) else reference
    if ref_tag != tag:
        return False, False
    ref_name = name_of(reference) if ref_tag != reference else ""
    return True, bool(ref_name) and (ref_name == name or ref_name.endswith("/" + name))


def _annotations(entry: dict[str, Any]) -> dict[str, Any]:
    return entry["annotations"] if isinstance(entry.get("annotations"), dict) else {}


def select_descriptor(index: dict[str, Any], name: str, tag: str, source: str,
                      source_ref: str | None = None) -> dict[str, Any]:
    """The ``index.json`` entry for ``tag`` (by ref.name or containerd annotations), else the only one.

    ``source_ref`` (``--source-ref``, or ``DIR:REF``) names the image exactly instead: its
    ``org.opencontainers.image.ref.name`` (or containerd name), so it may be pushed under another tag.
    """
    entries = index.get("manifests")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ArchiveError(f"{source}: index.json has no list of manifests")
    if not entries:
        raise ArchiveError(f"{source}: index.json lists no images")
    available = sorted({str(_annotations(e).get(REF_NAME, e.get("digest"))) for e in entries})
    if source_ref is not None:
        exact = [e for e in entries
                 if source_ref in (_annotations(e).get(REF_NAME), _annotations(e).get(CONTAINERD_NAME))]
        if len({json.dumps(e.get("digest")) for e in exact}) == 1:
            return exact[0]
        problem = "several images are" if exact else "no image is"
        raise ArchiveError(f"{source}: {problem} named {source_ref!r} in this archive "
                           f"(it holds: {', '.join(available)})")
    tagged, named = [], []
    for entry in entries:
        annotations = _annotations(entry)
        hits = [_matches(str(annotations[key]), name, tag) for key in (REF_NAME, CONTAINERD_NAME)
                if annotations.get(key)]
        if any(tag_hit for tag_hit, _ in hits):
            tagged.append(entry)
        if any(name_hit for _, name_hit in hits):
            named.append(entry)
    for candidates in (named, tagged):
        if len({json.dumps(c.get("digest")) for c in candidates}) == 1:
            return candidates[0]
    if len(entries) == 1:
        return entries[0]
    problem = "several images are" if tagged else "no image is"
    raise ArchiveError(f"{source}: {problem} tagged {tag!r} in this archive (it holds: {', '.join(available)}); "
                       "choose one with --source-ref REF or --archive PATH:REF")


def _blob_path(digest: Any, source: str) -> str:
    if not isinstance(digest, str) or ":" not in digest:
        raise ArchiveError(f"{source}: invalid digest {digest!r}")
    algorithm, hex_part = digest.split(":", 1)
    if algorithm not in ("sha256", "sha512") or not hex_part.isalnum() or hex_part.lower() != hex_part:
        raise ArchiveError(f"{source}: invalid digest {digest!r}")
    return f"blobs/{algorithm}/{hex_part}"


def verify_blob(tree: Tree, descriptor: dict[str, Any], source: str) -> Blob:
    """Hash a layout blob and compare digest and size with its descriptor."""
    digest, size = descriptor.get("digest"), descriptor.get("size")
    path = _blob_path(digest, source)
    if not tree.exists(path):
        raise ArchiveError(f"{source}: blob {digest} is missing from the layout")
    if not isinstance(size, int) or tree.size(path) != size:
        raise ArchiveError(f"{source}: blob {digest} is {tree.size(path)} bytes, its descriptor says {size}")
    algorithm = digest.split(":", 1)[0]
    hasher = hashlib.new(algorithm)
    with tree.open(path) as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    actual = f"{algorithm}:{hasher.hexdigest()}"
    if actual != digest:
        raise ArchiveError(f"{source}: blob {digest} does not match its digest (content hashes to {actual})")
    return Blob(digest, size, str(descriptor.get("mediaType") or "application/octet-stream"),
                lambda: tree.open(path))


def read_oci_layout(tree: Tree, kind: str, name: str, tag: str, source_ref: str | None = None) -> Image:
    _, layout = read_json(tree, "oci-layout")
    if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
        raise ArchiveError(f"{tree.source}: oci-layout has no imageLayoutVersion")
    _, index = read_json(tree, "index.json")
    if not isinstance(index, dict):
        raise ArchiveError(f"{tree.source}: index.json is not a JSON object")
    descriptor = select_descriptor(index, name, tag, tree.source, source_ref)
    blobs: dict[str, Blob] = {}
    manifests: list[ManifestToPush] = []
    _collect(tree, descriptor, blobs, manifests, depth=0)
    return Image(kind, list(blobs.values()), manifests)


def _collect(tree: Tree, descriptor: dict[str, Any], blobs: dict[str, Blob],
             manifests: list[ManifestToPush], depth: int) -> None:
    """Verify a manifest and everything it names, appending children before their parent."""
    source = tree.source
    if depth > 4:
        raise ArchiveError(f"{source}: indexes nested too deeply")
    digest = descriptor.get("digest")
    if any(m.digest == digest for m in manifests):
        return
    blob = verify_blob(tree, descriptor, source)
    if blob.size > MAX_JSON_SIZE:
        raise ArchiveError(f"{source}: manifest {digest} is larger than {MAX_JSON_SIZE} bytes")
    with blob.open() as handle:
        raw = handle.read()
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArchiveError(f"{source}: manifest {digest} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ArchiveError(f"{source}: manifest {digest} is not a JSON object")
    media_type = doc.get("mediaType") or descriptor.get("mediaType") or (
        OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if media_type in LIST_TYPES or "manifests" in doc:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ArchiveError(f"{source}: index {digest} has no list of manifests")
        for child in children:
            if not isinstance(child, dict):
                raise ArchiveError(f"{source}: index {digest} lists a manifest that is not a descriptor")
            if not tree.exists(_blob_path(child.get("digest"), source)):
                platform = child.get("platform") if isinstance(child.get("platform"), dict) else {}
                where = "/".join(str(platform[k]) for k in ("os", "architecture", "variant") if platform.get(k))
                raise ArchiveError(f"{source}: index {digest} lists manifest {child.get('digest')}"
                                   f"{f' ({where})' if where else ''}, which is not in the archive; an index is "
                                   "pushed whole, so every image it lists must be included")
            _collect(tree, child, blobs, manifests, depth + 1)
    else:
        config, layers = doc.get("config"), doc.get("layers") or []
        if not isinstance(config, dict) or not isinstance(layers, list):
            raise ArchiveError(f"{source}: manifest {digest} has no config descriptor or layer list")
        for needed in [config, *layers]:
            if not isinstance(needed, dict):
                raise ArchiveError(f"{source}: manifest {digest} names a blob without a descriptor")
            if needed.get("mediaType") == DOCKER_FOREIGN_LAYER or needed.get("digest") in blobs:
                continue
            blobs[needed["digest"]] = verify_blob(tree, needed, source)
    manifests.append(ManifestToPush(blob.digest, str(media_type), raw))


def spool_dir() -> tuple[Path, Callable[[], None]]:
    """A private temporary directory for compressed layers, and how to remove it."""
    path = Path(tempfile.mkdtemp(prefix="registry-admin-"))
    os.chmod(path, stat.S_IRWXU)
    return path, lambda: shutil.rmtree(path, ignore_errors=True)
