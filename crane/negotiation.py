"""Which manifest a GET or HEAD answers with, given the client's ``Accept`` headers.

The rule is the Docker distribution registry's (``registry/handlers/manifests.go``),
minus Docker schema 1, which this registry never stores:

1. An OCI image manifest or OCI index is served only to a client whose
   ``Accept`` lists its media type; otherwise ``404 MANIFEST_UNKNOWN`` ("OCI
   manifest found, but accept header does not support OCI manifests"), by tag
   and by digest alike.
2. A Docker schema 2 manifest is always served as stored (distribution 2.x
   would rewrite it to schema 1 for a tag; there is no schema 1 here).
3. A Docker manifest list asked for *by tag* by a client whose ``Accept`` does
   not list the list type is answered with the list's ``linux/amd64`` image
   (its own digest in ``Docker-Content-Digest``), as distribution does for old
   clients; no such image gives ``404 MANIFEST_UNKNOWN``; if that image is
   Docker schema 2 and the client does not accept schema 2 either, ``400
   MANIFEST_INVALID`` ("Schema 2 manifest not supported by client").
   By digest the list itself is served: the digest names exactly those bytes.

Media types are matched exactly; ``*/*`` and ``q=`` values do not count, as in
distribution.
"""
from __future__ import annotations

import functools
from typing import Iterable

from pulp_registry import oci
from pulp_registry.registry_errors import ManifestInvalid, ManifestUnknown

from crane.published import ManifestInfo, PublishedRepository

DEFAULT_PLATFORM = ("linux", "amd64")

_NOT_ACCEPTED = {
    oci.OCI_MANIFEST: "OCI manifest found, but accept header does not support OCI manifests",
    oci.OCI_INDEX: "OCI index found, but accept header does not support OCI indexes",
}


def find_manifest(repository: PublishedRepository, reference: str) -> tuple[ManifestInfo, bool]:
    """The manifest a (validated) tag or digest names, and whether it was named by tag."""
    by_tag = not oci.is_digest(reference)
    digest = repository.tags.get(reference) if by_tag else reference
    manifest = repository.manifests.get(digest) if digest else None
    if manifest is None:
        what = "tag" if by_tag else "manifest"
        raise ManifestUnknown(f"{what} {reference} not found in {repository.name}",
                              detail={"Tag" if by_tag else "Digest": reference})
    return manifest, by_tag


def negotiate(repository: PublishedRepository, manifest: ManifestInfo, by_tag: bool,
              accept_headers: Iterable[str]) -> ManifestInfo:
    """The manifest to send for ``manifest`` to a client with these ``Accept`` headers (see module doc)."""
    media_type = manifest.media_type
    if media_type == oci.DOCKER_MANIFEST:
        return manifest
    accepted = _accepted(tuple(accept_headers))
    if media_type in accepted:
        return manifest
    if media_type in _NOT_ACCEPTED:
        raise ManifestUnknown(_NOT_ACCEPTED[media_type])
    if media_type != oci.DOCKER_MANIFEST_LIST or not by_tag:
        return manifest
    child = _default_platform_child(repository, manifest)
    if child is None:
        raise ManifestUnknown(f"the manifest list has no {'/'.join(DEFAULT_PLATFORM)} image and the "
                              "client does not accept manifest lists")
    if child.media_type == oci.DOCKER_MANIFEST and oci.DOCKER_MANIFEST not in accepted:
        raise ManifestInvalid("Schema 2 manifest not supported by client")
    return child


@functools.lru_cache(maxsize=256)
def _accepted(accept_headers: tuple[str, ...]) -> frozenset[str]:
    """Parsed once per distinct ``Accept`` (clients send a handful): a cache miss of a repository pays for it."""
    return frozenset(oci.accepted_media_types(accept_headers))


def _default_platform_child(repository: PublishedRepository, manifest: ManifestInfo) -> ManifestInfo | None:
    for digest, platform in manifest.platforms or ():
        if (platform.get("os"), platform.get("architecture")) == DEFAULT_PLATFORM:
            return repository.manifests.get(digest)
    return None
