"""What the console shows of a repository's content: a page of tags, a manifest's parts, pull commands.

Sizes and media types come from the same functions as the REST API's tag and image lists
(``repositories.SizeCalculator``, ``repositories.tag_json``), referrers from
``content.list_referrers`` (the admin side's referrers API), and a manifest's layers from
its exact stored bytes, parsed by ``oci.parse_manifest``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pulp_registry import content, oci, repositories
from pulp_registry.db import Collections
from pulp_registry.registry_errors import RegistryError

#: Tags on one page of a repository's page.
TAG_PAGE_SIZE = 100
#: Tags named on a manifest's page (a manifest rarely has more; the repository page lists them all).
MAX_MANIFEST_TAGS = 50


@dataclass(frozen=True)
class TagPage:
    tags: list[dict[str, Any]]
    after: str | None     # the last tag shown, when more follow


def platforms_of(manifest_doc: Mapping[str, Any] | None) -> list[str]:
    """``linux/amd64``, ... of a list's or index's children (nothing for an image)."""
    found = [repositories.platform_string(content.child_platform(child))
             for child in (manifest_doc or {}).get("children") or []]
    return [platform for platform in found if platform]


def tag_page(db: Collections, repo_id: str, after: str | None = None, limit: int = TAG_PAGE_SIZE) -> TagPage:
    """Tags by name after ``after``, as ``repositories.list_tags`` shows them, plus the platforms of lists."""
    query: dict[str, Any] = {"repo_id": repo_id}
    if after:
        query["name"] = {"$gt": after}
    tags = list(db.tags.find(query).sort("name", 1).limit(limit + 1))
    more = len(tags) > limit
    tags = tags[:limit]
    digests = sorted({tag["manifest_digest"] for tag in tags})
    media_types = {association["digest"]: association.get("media_type") for association in db.repo_manifests.find(
        {"repo_id": repo_id, "digest": {"$in": digests}}, {"digest": 1, "media_type": 1})} if digests else {}
    sizes = repositories.SizeCalculator(db, digests)
    shown = []
    for tag in tags:
        row = repositories.tag_json(tag, sizes, media_types)
        row["platforms"] = platforms_of(sizes.manifests.get(tag["manifest_digest"]))
        shown.append(row)
    return TagPage(shown, tags[-1]["name"] if more and tags else None)


# --- pull commands ------------------------------------------------------------------------


def _local_name(name: str, suffix: str) -> str:
    return f"{name.replace('/', '-')}-{suffix}"


def pull_commands(host: str, name: str, *, tag: str | None = None, digest: str | None = None,
                  is_list: bool = False, plain_http: bool = False) -> list[tuple[str, str]]:
    """``(label, command)`` pairs of docker, podman and skopeo for ``host/name:tag`` or ``host/name@digest``.

    skopeo copies into ``oci:<dir>``: an OCI image layout directory, the standard on-disk form that
    podman, buildah and umoci read back (``podman pull oci:<dir>``), needs no daemon, and keeps
    the manifests' bytes and digests as pulled; ``dir:`` is skopeo's own, non-standard layout. The
    directory is named after the repository and the tag (or the start of the digest) so that two
    copies never mix, and holds no ``:`` (the ``oci:`` transport reads one as the start of a
    reference). For a list or index, ``--all`` copies every platform (skopeo would otherwise keep
    only its own, and the copy's digest would not be the one pulled). ``plain_http``: Crane is
    served over HTTP, which podman and skopeo refuse unless told (docker reads it from the daemon's
    ``insecure-registries``, which the page mentions).
    """
    if tag is not None:
        reference, by, local = f"{host}/{name}:{tag}", "tag", _local_name(name, tag)
    elif digest is not None:
        reference, by, local = f"{host}/{name}@{digest}", "digest", _local_name(name, digest.split(":", 1)[-1][:12])
    else:
        raise ValueError("a tag or a digest is needed")
    podman_options = "--tls-verify=false " if plain_http else ""
    skopeo_options = ("--all " if is_list else "") + ("--src-tls-verify=false " if plain_http else "")
    return [(f"docker, by {by}", f"docker pull {reference}"),
            (f"podman, by {by}", f"podman pull {podman_options}{reference}"),
            (f"skopeo, by {by}", f"skopeo copy {skopeo_options}docker://{reference} oci:{local}")]


# --- a manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestView:
    """A manifest of a repository, as its console page shows it."""

    digest: str
    media_type: str
    size: int                          # the manifest's own bytes
    total_size: int                    # with config and layers (and children for a list)
    is_list: bool
    config: oci.Descriptor | None
    layers: list[oci.Descriptor]
    layers_size: int
    children: list[dict[str, Any]]     # digest, media_type, size, platform, held
    subject: str | None
    subject_held: bool
    artifact_type: str | None
    annotations: dict[str, str]
    tags: list[str]
    referrers: list[dict[str, Any]]
    partial: bool


def valid_digest(digest: str) -> bool:
    """Whether ``digest`` is a well-formed digest (``oci.validate_digest``), before any lookup."""
    try:
        oci.validate_digest(digest)
    except RegistryError:
        return False
    return True


def manifest_view(services: Any, repo: Mapping[str, Any], digest: str) -> ManifestView | None:
    """The manifest ``digest`` of ``repo`` (None when the repository does not hold it), from its exact bytes."""
    db: Collections = services.db
    try:
        association, raw = content.get_manifest(services, repo, oci.validate_digest(digest))
    except RegistryError:
        return None
    media_type = association.get("media_type")
    manifest = oci.parse_manifest(raw, media_type, oci.digest_algorithm(digest))
    sizes = repositories.SizeCalculator(db, [digest])
    held_children = {held["digest"] for held in db.repo_manifests.find(
        {"repo_id": repo["_id"], "digest": {"$in": manifest.child_digests}, content.REMOVING: content.VISIBLE},
        {"digest": 1})} if manifest.manifests else set()
    children = [{"digest": child.digest, "media_type": child.media_type, "size": child.size,
                 "platform": repositories.platform_string(child.platform), "held": child.digest in held_children}
                for child in manifest.manifests]
    subject = manifest.subject.digest if manifest.subject else None
    subject_held = bool(subject) and content.resolve_reference(db, repo["_id"], subject) is not None
    tags = [tag["name"] for tag in db.tags.find({"repo_id": repo["_id"], "manifest_digest": digest}, {"name": 1})
            .sort("name", 1).limit(MAX_MANIFEST_TAGS)]
    return ManifestView(
        digest=digest, media_type=manifest.media_type, size=manifest.size,
        total_size=sizes.size(digest, manifest.size), is_list=manifest.is_list, config=manifest.config,
        layers=list(manifest.layers), layers_size=sum(layer.size for layer in manifest.layers),
        children=children, subject=subject, subject_held=subject_held, artifact_type=manifest.artifact_type,
        annotations=dict(manifest.annotations or {}), tags=tags,
        referrers=content.list_referrers(db, repo["_id"], digest),
        partial=bool(association.get(content.PARTIAL)))
