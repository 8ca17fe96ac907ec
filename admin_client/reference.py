"""``NAME[:TAG]`` as users type it, checked with the registry's own name and tag rules.

The client may not import server code, so the two small patterns of the
distribution spec are repeated here; the server checks them again anyway.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255
DEFAULT_TAG = "latest"


class InvalidReference(ValueError):
    """A reference that breaks the name or tag rules; the message says which and why."""


@dataclass(frozen=True)
class Reference:
    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def validate_name(name: str) -> str:
    if not name or len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise InvalidReference(f"invalid repository name {name!r}: lowercase components of [a-z0-9] separated "
                             "by '.', '_', '__' or '-', joined by '/', at most 255 characters")
    return name


def validate_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise InvalidReference(f"invalid tag {tag!r}: [A-Za-z0-9_] then up to 127 of [A-Za-z0-9._-]")
    return tag


def parse_reference(text: str, default_tag: str = DEFAULT_TAG) -> Reference:
    """Split ``my/app:1.0`` into name and tag; the tag defaults to ``latest``.

    A colon before the last ``/`` belongs to a host (``host:5000/app``), which
    is not part of a repository name here, so the name check reports it.
    """
    if "@" in text:
        raise InvalidReference(f"invalid reference {text!r}: push by tag (NAME[:TAG]), not by digest")
    name, tag = text, default_tag
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        name, tag = text[:colon], text[colon + 1:]
    return Reference(validate_name(name), validate_tag(tag))


def tag_of(image_reference: str) -> str | None:
    """The tag part of a full reference such as ``docker.io/library/app:1.0`` (``None`` if it has none)."""
    reference = image_reference.split("@", 1)[0]
    last_slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > last_slash:
        return reference[colon + 1:]
    return None


def name_of(image_reference: str) -> str:
    """The reference without its tag or digest."""
    reference = image_reference.split("@", 1)[0]
    tag = tag_of(reference)
    return reference[: -len(tag) - 1] if tag is not None else reference


# --- references with a digest (copy, remove), registry hosts, and archive:ref -------------

DIGEST_RE = re.compile(r"^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True)
class ImageRef:
    """``NAME``, ``NAME:TAG`` or ``NAME@DIGEST``: what copy and remove name."""

    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}" if self.tag else self.name


def validate_digest(digest: str) -> str:
    if not DIGEST_RE.match(digest):
        raise InvalidReference(f"invalid digest {digest!r}: expected sha256: and 64 lowercase hex digits")
    return digest


def parse_image_ref(text: str) -> ImageRef:
    """``dev/app``, ``dev/app:1.2`` or ``dev/app@sha256:...`` (no default tag: a bare name stays bare)."""
    if "@" in text:
        name, digest = text.split("@", 1)
        if ":" in name[name.rfind("/") + 1:]:
            raise InvalidReference(f"invalid reference {text!r}: name a tag or a digest, not both")
        return ImageRef(validate_name(name), digest=validate_digest(digest))
    last_slash, colon = text.rfind("/"), text.rfind(":")
    if colon > last_slash:
        return ImageRef(validate_name(text[:colon]), tag=validate_tag(text[colon + 1:]))
    return ImageRef(validate_name(text))


def registry_host_of(text: str) -> str | None:
    """The first component of ``text`` when it may be a registry host (``host:5000``, ``localhost``,
    ``registry.example.com``) and is followed by a path; ``None`` otherwise."""
    first, slash, _ = text.partition("/")
    if not slash:
        return None
    if ":" in first or first == "localhost" or "." in first:
        return first
    return None


def strip_registry_host(text: str, own_hosts: set[str]) -> str:
    """``127.0.0.1:5000/team/app:1.0`` -> ``team/app:1.0`` when the host is this registry's.

    A host with a port (or ``localhost``) that is not ours is an error: a name
    never holds a host, and pushing somewhere else is not what was asked. A
    dotted first component that is not ours stays, as names may hold dots.
    """
    host = registry_host_of(text)
    if host is None:
        return text
    rest = text[len(host) + 1:]
    if host in own_hosts:
        return rest
    if ":" in host or host == "localhost":
        raise InvalidReference(f"{text!r} names the registry host {host}, which is not this registry's "
                               f"({', '.join(sorted(own_hosts)) or 'unknown'}); a name must not contain a "
                               f"registry host: push to --url instead, as {rest}")
    return text


def split_archive_ref(text: str, exists: Callable[[str], bool]) -> tuple[str, str | None]:
    """``./layout:1.0`` -> (``./layout``, ``1.0``), as skopeo writes ``oci:DIR:REF``; a path that exists
    as given keeps its colons."""
    if exists(text):
        return text, None
    colon = text.find(":")
    while colon > 0:  # skopeo splits oci:DIR:REF at the first colon; a ref may hold more (host:port/app:1)
        path, ref = text[:colon], text[colon + 1:]
        if ref and exists(path):
            return path, ref
        colon = text.find(":", colon + 1)
    return text, None
