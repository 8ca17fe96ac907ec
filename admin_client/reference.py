"""``NAME[:TAG]`` as users type it, checked with the registry's own name and tag rules.

The client may not import server code, so the two small patterns of the
distribution spec are repeated here; the server checks them again anyway.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

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
