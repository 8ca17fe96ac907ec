"""Paths and constants of the published tree: the contract between publish and Crane.

``docs/published-format.md`` describes the format; ``pulp_registry.publish`` is
its one writer and ``crane.published`` its one reader. Pure, so Crane may import it.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

FORMAT_VERSION = 1
FORMAT_FILE = "FORMAT"
FORMAT_TEXT = f"pulp-registry-published {FORMAT_VERSION}\n"
GENERATION_FILE = "generation"
BLOBS_DIR = "blobs"
REPOSITORIES_DIR = "repositories"
CURRENT_LINK = "current"
VERSIONS_DIR = "versions"
REPOSITORY_JSON = "repository.json"


def encode_name(name: str) -> str:
    """A repository name as one directory name (``my/app`` -> ``my%2Fapp``)."""
    return quote(name, safe="")


def decode_name(directory_name: str) -> str:
    return unquote(directory_name)


def blob_path(root: Path, digest: str) -> Path:
    """Where the bytes of a published blob or manifest are; ``digest`` must be validated first."""
    algorithm, hexdigest = digest.split(":", 1)
    return root / BLOBS_DIR / algorithm / hexdigest


def repository_dir(root: Path, name: str) -> Path:
    return root / REPOSITORIES_DIR / encode_name(name)
