"""What a Crane serves, seen as a client sees it (HTTP only), and what its reader logs.

The integrity tests check Crane through its answers, not its internals: the
version served is known by its tags (name -> digest), which each test makes
different from one publish to the next.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from pulp_registry import oci
from tests.crane.conftest import CraneUnderTest


class ErrorRecords(logging.Handler):
    """Warnings and errors Crane logs (a refused version is logged as an error); attach with ``watch``."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> "ErrorRecords":
        logging.getLogger("crane").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("crane").removeHandler(self)


def served_tags(crane: CraneUnderTest, name: str) -> dict[str, str] | None:
    """Tag -> manifest digest as Crane serves ``name`` now; None when it serves no such repository."""
    response = crane.get(f"/v2/{name}/tags/list")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.data
    tags: dict[str, str] = {}
    for tag in json.loads(response.data)["tags"] or []:
        head = crane.head(f"/v2/{name}/manifests/{tag}")
        assert head.status_code == 200, (tag, head.status_code)
        tags[tag] = head.headers["Docker-Content-Digest"]
    return tags


def assert_served_whole(crane: CraneUnderTest, name: str) -> None:
    """Every tag resolves to a manifest Crane serves, with its blobs and children."""
    for tag, digest in (served_tags(crane, name) or {}).items():
        response = crane.get(f"/v2/{name}/manifests/{tag}")
        assert response.status_code == 200, (tag, digest, response.data)
        manifest = json.loads(response.data)
        for child in [child["digest"] for child in manifest.get("manifests", [])]:
            assert crane.head(f"/v2/{name}/manifests/{child}").status_code == 200, (tag, child)
            assert_blobs_served(crane, name, json.loads(crane.get(f"/v2/{name}/manifests/{child}").data))
        assert_blobs_served(crane, name, manifest)


def assert_blobs_served(crane: CraneUnderTest, name: str, manifest: dict[str, Any]) -> None:
    descriptors = ([manifest["config"]] if "config" in manifest else []) + manifest.get("layers", [])
    for descriptor in descriptors:
        if descriptor["mediaType"] in oci.FOREIGN_LAYER_MEDIA_TYPES:
            continue
        response = crane.head(f"/v2/{name}/blobs/{descriptor['digest']}")
        assert response.status_code == 200, (descriptor, response.status_code)
