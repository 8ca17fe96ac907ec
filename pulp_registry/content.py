"""Content units and what a repository holds: blobs, manifests, tags and their associations.

Plain functions called by the push endpoints (``pulp_registry/registry``), the
REST API, the workers and tests. Every write is a single-document atomic
operation (an upsert, or an insert guarded by a unique index), so two pushes
racing on the same content both succeed and leave one document. Validation
happens before any write: bad input changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Mapping

from pulp_registry import history, oci, tasks
from pulp_registry.db import Collections, DuplicateKeyError, utcnow
from pulp_registry.registry_errors import (BlobTooLarge, BlobUnknown, BlobUploadUnknown, Denied, DigestInvalid,
                                          ManifestBlobUnknown, ManifestInvalid, ManifestUnknown, NameInvalid,
                                          NameUnknown, QuotaExceeded, RegistryError, StorageFull)
from pulp_registry.storage import SizeLimit

Repo = Mapping[str, Any] | str

#: The field of a ``repo_manifests`` or ``repo_blobs`` association that a pending removal sets
#: (``pulp_registry.removal``): ``remove`` (asked for: hidden from the registry at once, gone as
#: soon as nothing the repository holds uses it) or ``if-unused`` (goes with what used it, unless
#: still used). A push that uses the association again clears it.
REMOVING = "removing"
REMOVE_MARK, IF_UNUSED_MARK = "remove", "if-unused"
#: Associations the registry answers for: those not asked to be removed.
VISIBLE = {"$ne": REMOVE_MARK}
#: The field of a ``repo_manifests`` association of a list or index that a sync with a platform
#: filter stored without some of its children (``keep_synced_manifest``): the list's bytes name
#: them, the repository does not hold them, and publish lists only the children it holds.
PARTIAL = "partial_children"


def repo_id_of(repo: Repo) -> str:
    """Functions take a repository document or its id."""
    return repo if isinstance(repo, str) else repo["_id"]


def ensure_repository(db: Collections, repo_name: str) -> dict[str, Any]:
    """The repository a push goes to, created on first push; its errors in the registry's form."""
    from pulp_registry.repositories import RepositoryError, ensure_repository as ensure

    try:
        return ensure(db, repo_name)
    except RepositoryError as exc:
        if exc.field == "name":
            raise NameInvalid(exc.message, detail={"name": repo_name}) from None
        raise RegistryError(exc.message) from None


def _upsert_association(collection: Any, key: dict[str, Any], fields: dict[str, Any], keep: bool = False) -> None:
    """Insert ``key`` + ``fields`` once (an upsert copies the key's fields into the new document);
    a concurrent insert of the same key is the same result.

    ``keep``: this push uses the association, so a pending removal's ``removing`` mark on it is
    cleared (``pulp_registry.removal`` then leaves it in place).
    """
    update: dict[str, Any] = {"$setOnInsert": fields}
    if keep:
        update["$unset"] = {REMOVING: ""}
    try:
        collection.update_one(key, update, upsert=True)
    except DuplicateKeyError:
        if keep:
            collection.update_one(key, {"$unset": {REMOVING: ""}})


# --- blobs ------------------------------------------------------------------------


def add_blob(services: Any, repo: Repo, digest: str, size: int) -> None:
    """Record blob ``digest`` and associate it with ``repo``; its bytes must be in storage already."""
    oci.validate_digest(digest)
    stored_size = services.storage.size(digest)
    if stored_size is None:
        raise BlobUnknown(f"blob {digest} is not in content storage", detail={"digest": digest})
    if stored_size != size:
        raise BlobUnknown(f"blob {digest} is {stored_size} bytes in storage, not {size}", detail={"digest": digest})
    now = utcnow()
    _upsert_association(services.db.blobs, {"_id": digest}, {"size": size, "created": now})
    _upsert_association(services.db.repo_blobs, {"repo_id": repo_id_of(repo), "digest": digest},
                        {"size": size, "added": now}, keep=True)


def restore_blob_association(db: Collections, association: Mapping[str, Any]) -> None:
    """Put back a ``repo_blobs`` association a removal took while a push started using it."""
    fields = {key: value for key, value in association.items() if key not in ("_id", "repo_id", "digest")}
    _upsert_association(db.repo_blobs, {"repo_id": association["repo_id"], "digest": association["digest"]},
                        fields, keep=True)


def store_blob(services: Any, repo: Repo, data: bytes) -> str:
    """Store ``data`` as a blob of ``repo`` and return its digest (for tests and importers)."""
    digest = oci.compute_digest(data)
    services.storage.put_bytes(data, digest)
    add_blob(services, repo, digest, len(data))
    return digest


def repo_blob(db: Collections, repo_id: str, digest: str) -> dict[str, Any] | None:
    """The association of blob ``digest`` with a repository, or None if it does not hold it
    (or was asked to remove it: a manifest it holds still uses it, so its removal waits)."""
    return db.repo_blobs.find_one({"repo_id": repo_id, "digest": digest, REMOVING: VISIBLE})


def blob_size(services: Any, repo_id: str | None, digest: str) -> int | None:
    """The size of a blob ``repo_id`` holds and storage has, else None."""
    if repo_id is None or not oci.is_digest(digest) or repo_blob(services.db, repo_id, digest) is None:
        return None
    return services.storage.size(digest)


def repositories_holding_blob(db: Collections, digest: str, limit: int = 20) -> list[dict[str, Any]]:
    """Some repositories that hold ``digest`` (for a mount that names no source)."""
    repo_ids = [a["repo_id"] for a in db.repo_blobs.find({"digest": digest}, {"repo_id": 1}).limit(limit)]
    return list(db.repositories.find({"_id": {"$in": repo_ids}})) if repo_ids else []


# --- upload sessions ----------------------------------------------------------------


def stored_bytes(db: Collections) -> int:
    """Bytes of blobs in content storage, counted from the ``blobs`` documents (each digest once)."""
    totals = list(db.blobs.aggregate([{"$group": {"_id": None, "total": {"$sum": "$size"}}}]))
    return int(totals[0]["total"]) if totals else 0


def blob_limit(services: Any) -> SizeLimit | None:
    """The tighter of ``max_blob_size`` and what ``storage_quota`` leaves, or None when both are off.

    The quota counts committed blobs only: sessions under way are not reserved, so pushes
    running at the same moment may together go over it by what they carry.
    """
    settings = services.settings
    limits: list[SizeLimit] = []
    if settings.max_blob_size:
        limits.append(SizeLimit(settings.max_blob_size, lambda: BlobTooLarge(
            f"blob too large: this registry takes blobs of at most {settings.max_blob_size} bytes",
            detail={"max_blob_size": settings.max_blob_size})))
    if settings.storage_quota:
        left = max(settings.storage_quota - stored_bytes(services.db), 0)
        limits.append(SizeLimit(left, lambda: QuotaExceeded(
            f"storage quota exceeded: the registry may hold {settings.storage_quota} bytes of content "
            f"and has room for {left} more", detail={"storage_quota": settings.storage_quota, "available": left})))
    return min(limits, key=lambda limit: limit.max_bytes) if limits else None


def start_upload(services: Any, repo_name: str, repo_id: str | None, owner: str | None = None) -> str:
    """Open a blob upload session for ``repo_name`` (whose repository may not exist yet), owned by ``owner``."""
    upload_id = services.storage.upload_start()
    services.db.uploads.insert_one({"_id": upload_id, "repo_id": repo_id, "repo_name": repo_name,
                                    "owner": owner, "started": utcnow()})
    return upload_id


def get_upload(services: Any, repo_name: str, upload_id: str, caller_login: str | None = None) -> dict[str, Any]:
    """The session ``upload_id`` of ``repo_name`` opened by ``caller_login``, or ``BlobUploadUnknown``.

    A session belongs to the repository and the user that opened it: to anyone else it does not exist.
    """
    upload = services.db.uploads.find_one({"_id": upload_id}) if isinstance(upload_id, str) else None
    if (upload is None or upload["repo_name"] != repo_name
            or (upload.get("owner") is not None and upload["owner"] != caller_login)):
        raise BlobUploadUnknown(f"upload {upload_id} is unknown to repository {repo_name}",
                                detail={"upload": upload_id})
    return upload


def upload_size(services: Any, upload: Mapping[str, Any]) -> int:
    return services.storage.upload_size(upload["_id"])


def append_upload(services: Any, upload: Mapping[str, Any], stream: BinaryIO | Iterable[bytes],
                  expected_start: int | None = None, length: int | None = None) -> int:
    """Append a chunk to the session; return its new size.

    ``expected_start`` is where a ``Content-Range`` says the chunk starts (``RangeInvalid``
    otherwise); ``length`` is its Content-Length, refused before reading when over the limit.
    A chunk over a limit, or that finds the storage full, drops the whole session: nothing is kept.
    """
    try:
        return services.storage.upload_append(upload["_id"], stream, expected_start=expected_start,
                                              length=length, limit=blob_limit(services))
    except (BlobTooLarge, QuotaExceeded, StorageFull):
        cancel_upload(services, upload)
        raise


def cancel_upload(services: Any, upload: Mapping[str, Any]) -> None:
    services.storage.upload_cancel(upload["_id"])
    services.db.uploads.delete_one({"_id": upload["_id"]})


def finish_upload(services: Any, upload: Mapping[str, Any], digest: str) -> tuple[dict[str, Any], int]:
    """Verify the session against ``digest``, keep the blob and give it to the repository (created if new).

    Finishing ends the session whatever the outcome: a digest that does not match, an upload
    changed by a PATCH racing the finish, or a full storage keep nothing.
    """
    oci.validate_digest(digest)
    try:
        size = services.storage.upload_finish(upload["_id"], digest)
    finally:
        services.db.uploads.delete_one({"_id": upload["_id"]})
    repo = ensure_repository(services.db, upload["repo_name"])
    add_blob(services, repo, digest, size)
    return repo, size


def put_blob(services: Any, repo_name: str, digest: str, stream: BinaryIO | Iterable[bytes],
             size: int | None) -> tuple[dict[str, Any], int]:
    """A monolithic upload: store the verified stream and give it to the repository (created if new).

    A ``size`` (Content-Length) over the limit is refused before the body is read.
    """
    oci.validate_digest(digest)
    size = services.storage.put_stream(stream, digest, size, limit=blob_limit(services))
    repo = ensure_repository(services.db, repo_name)
    add_blob(services, repo, digest, size)
    return repo, size


# --- manifests ----------------------------------------------------------------------


def parse_pushed_manifest(raw: bytes, content_type: str | None, reference: str) -> oci.Manifest:
    """Parse ``raw`` and check it against ``reference`` (a tag, or the digest it must have)."""
    if ":" in reference:
        algorithm = oci.digest_algorithm(reference)
        manifest = oci.parse_manifest(raw, content_type, algorithm)
        if manifest.digest != reference:
            raise DigestInvalid(f"manifest digest is {manifest.digest}, not {reference}",
                                detail={"digest": reference, "computed": manifest.digest})
        return manifest
    oci.validate_tag(reference)
    return oci.parse_manifest(raw, content_type)


def check_references(services: Any, repo_id: str | None, manifest: oci.Manifest,
                     allow_missing_children: bool = False) -> None:
    """Every blob and child manifest must be held by the repository (the subject need not be).

    ``allow_missing_children``: a sync with a platform filter stores a list byte for byte but only
    the children of the chosen platforms; those it holds must still match their descriptors.
    """
    db = services.db
    for descriptor in ([manifest.config] if manifest.config else []) + list(manifest.layers):
        if descriptor.digest not in manifest.blob_digests:
            continue  # foreign layers are not pushed
        association = repo_blob(db, repo_id, descriptor.digest) if repo_id else None
        if association is None:
            raise ManifestBlobUnknown(f"blob {descriptor.digest} is not in repository; push it first",
                                      detail={"digest": descriptor.digest})
        if int(association.get("size", -1)) != descriptor.size:
            raise ManifestInvalid(f"descriptor of blob {descriptor.digest} says {descriptor.size} bytes, "
                                  f"the blob has {association.get('size')}",
                                  detail={"digest": descriptor.digest, "size": association.get("size")})
    for child in manifest.manifests:
        association = (db.repo_manifests.find_one({"repo_id": repo_id, "digest": child.digest})
                       if repo_id else None)
        if association is None and allow_missing_children:
            continue
        if association is None:
            raise ManifestBlobUnknown(f"manifest {child.digest} listed in the index is not in repository; "
                                      "push it first", detail={"digest": child.digest})
        if int(association.get("size", -1)) != child.size:
            raise ManifestInvalid(f"descriptor of manifest {child.digest} says {child.size} bytes, "
                                  f"the manifest has {association.get('size')}",
                                  detail={"digest": child.digest, "size": association.get("size")})


def _platform_json(platform: Mapping[str, Any] | None) -> str | None:
    """A child's platform as raw JSON text: its keys (``os.version``, or anything a pusher wrote)
    are user data and never become MongoDB field names."""
    return json.dumps(platform, sort_keys=True) if platform is not None else None


def child_platform(child: Mapping[str, Any]) -> dict[str, Any] | None:
    """The platform object of a ``children`` entry of a ``manifests`` document (the one reader of it)."""
    platform_json = child.get("platform_json")
    if not isinstance(platform_json, str):
        return None
    platform = json.loads(platform_json)
    return platform if isinstance(platform, dict) else None


def _manifest_doc(manifest: oci.Manifest) -> dict[str, Any]:
    """The ``manifests`` document; annotations and platforms as raw JSON so user keys never become field names."""
    return {
        "media_type": manifest.media_type,
        "size": manifest.size,
        "config_digest": manifest.config.digest if manifest.config else None,
        "config_media_type": manifest.config.media_type if manifest.config else None,
        "blob_digests": manifest.blob_digests,
        "children": [{"digest": child.digest, "media_type": child.media_type, "size": child.size,
                      "platform_json": _platform_json(child.platform)} for child in manifest.manifests],
        "subject": manifest.subject.digest if manifest.subject else None,
        "artifact_type": manifest.artifact_type,
        "annotations_json": json.dumps(manifest.annotations, sort_keys=True) if manifest.annotations else None,
        "created": utcnow(),
    }


def store_manifest(services: Any, repo: Repo, raw: bytes, content_type: str | None,
                   reference: str) -> oci.Manifest:
    """Validate a pushed manifest, store its exact bytes, associate it with ``repo`` and tag it.

    Raises the registry error saying what is wrong before writing anything.
    """
    repo_id = repo_id_of(repo)
    manifest = parse_pushed_manifest(raw, content_type, reference)
    check_references(services, repo_id, manifest)
    _keep_manifest(services, repo_id, raw, manifest, reference)
    return manifest


def _keep_manifest(services: Any, repo_id: str, raw: bytes, manifest: oci.Manifest, reference: str,
                   partial: bool = False) -> None:
    """Store a validated manifest's bytes, its unit, its association and its tag.

    ``partial``: a list stored without some of its children (``PARTIAL`` on its association).
    """
    services.storage.put_bytes(raw, manifest.digest)
    _upsert_association(services.db.manifests, {"_id": manifest.digest}, _manifest_doc(manifest))
    fields: dict[str, Any] = {"media_type": manifest.media_type, "size": manifest.size, "added": utcnow()}
    if partial:
        fields[PARTIAL] = True
    _upsert_association(services.db.repo_manifests, {"repo_id": repo_id, "digest": manifest.digest},
                        fields, keep=True)
    if not oci.is_digest(reference):
        set_tag(services.db, repo_id, reference, manifest.digest)


def keep_synced_manifest(services: Any, repo_id: str, raw: bytes, manifest: oci.Manifest,
                         partial: bool = False) -> None:
    """Store a manifest a sync fetched, untagged (tags come last); its blobs and the children it
    keeps must be held already. ``partial``: a list whose other children the platform filter left
    out; the association says so (``PARTIAL``), so publish lists only the children held.
    """
    check_references(services, repo_id, manifest, allow_missing_children=partial)
    _keep_manifest(services, repo_id, raw, manifest, manifest.digest, partial=partial)
    if manifest.is_list:   # an association made by an earlier sync of other platforms
        key = {"repo_id": repo_id, "digest": manifest.digest}
        services.db.repo_manifests.update_one(key, {"$set": {PARTIAL: True}} if partial else {"$unset": {PARTIAL: ""}})


def set_tag(db: Collections, repo_id: str, tag: str, manifest_digest: str) -> None:
    """Point ``tag`` at a manifest the repository holds (one atomic upsert)."""
    oci.validate_tag(tag)
    update = {"$set": {"manifest_digest": manifest_digest, "updated": utcnow()}}
    key = {"repo_id": repo_id, "name": tag}
    try:
        db.tags.update_one(key, update, upsert=True)
    except DuplicateKeyError:
        db.tags.update_one(key, update)  # a concurrent upsert created it: now it exists


@dataclass(frozen=True)
class PushedManifest:
    repo: dict[str, Any]
    manifest: oci.Manifest
    publish_task: dict[str, Any] | None


def push_manifest(services: Any, repo_name: str, raw: bytes, content_type: str | None,
                  reference: str) -> PushedManifest:
    """A manifest PUT: validate, create the repository if new, store, then have it published.

    Everything is checked before the repository is created, so a refused manifest
    leaves no trace.
    """
    from pulp_registry.repositories import being_deleted, find_repository_by_name

    oci.validate_name(repo_name)
    existing = find_repository_by_name(services.db, repo_name)
    if existing is not None and being_deleted(existing):
        raise Denied(being_deleted(existing), detail={"name": repo_name})
    manifest = parse_pushed_manifest(raw, content_type, reference)
    check_references(services, existing["_id"] if existing else None, manifest)
    repo = existing or ensure_repository(services.db, repo_name)
    _keep_manifest(services, repo["_id"], raw, manifest, reference)
    history.record(services.db, repo["_id"], "push", {"reference": reference, "digest": manifest.digest,
                                                      "media_type": manifest.media_type})
    return PushedManifest(repo, manifest, request_publish(services, repo["_id"]))


def request_publish(services: Any, repo_id: str) -> dict[str, Any] | None:
    """Spawn a publish of the repository unless one is still waiting (it will see what was just written).

    ``tasks.submit`` answers the waiting one, even when two pushes ask at the same moment.
    """
    if services.celery is None:
        return tasks.find_pending(services.db, "publish", tasks.repository_resource(repo_id))
    return tasks.submit(services, "publish", [tasks.repository_resource(repo_id)], repo_id=repo_id)


def resolve_reference(db: Collections, repo_id: str, reference: str) -> str | None:
    """The digest a tag or digest reference names in a repository, or None."""
    if oci.is_digest(reference):
        held = db.repo_manifests.find_one({"repo_id": repo_id, "digest": reference, REMOVING: VISIBLE},
                                          {"_id": 1})
        return reference if held else None
    tag = db.tags.find_one({"repo_id": repo_id, "name": reference})
    return tag["manifest_digest"] if tag else None


def get_manifest(services: Any, repo: Repo, reference: str) -> tuple[dict[str, Any], bytes]:
    """The ``repo_manifests`` association and exact bytes of a manifest, or ``ManifestUnknown``."""
    repo_id = repo_id_of(repo)
    oci.validate_reference(reference)
    digest = resolve_reference(services.db, repo_id, reference)
    association = (services.db.repo_manifests.find_one({"repo_id": repo_id, "digest": digest, REMOVING: VISIBLE})
                   if digest else None)
    if association is None or not services.storage.exists(digest):
        raise ManifestUnknown(f"manifest {reference} is unknown to the repository",
                              detail={"reference": reference})
    return association, services.storage.read(digest)


def tag_names(db: Collections, repo_id: str, last: str | None = None, limit: int | None = None) -> list[str]:
    """Tag names in lexical order, after ``last``, at most ``limit`` of them."""
    query: dict[str, Any] = {"repo_id": repo_id}
    if last:
        query["name"] = {"$gt": last}
    cursor = db.tags.find(query, {"name": 1}).sort("name", 1)
    if limit is not None:
        cursor = cursor.limit(limit)
    return [tag["name"] for tag in cursor]


def require_repository_by_name(db: Collections, repo_name: str) -> dict[str, Any]:
    from pulp_registry.repositories import find_repository_by_name

    repo = find_repository_by_name(db, repo_name)
    if repo is None:
        raise NameUnknown(f"repository {repo_name} is not known to the registry", detail={"name": repo_name})
    return repo


# --- referrers (OCI distribution spec 1.1) ----------------------------------------------


def referrer_descriptor(unit: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest's entry in a referrers index, by Crane's rule (``crane.published.referrer_of``):
    ``artifactType`` is the manifest's own, else an image manifest's config media type."""
    media_type = unit["media_type"]
    artifact_type = unit.get("artifact_type") or None
    if artifact_type is None and media_type not in oci.LIST_MEDIA_TYPES:
        artifact_type = unit.get("config_media_type") or None
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": unit["_id"], "size": int(unit["size"])}
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if unit.get("annotations_json"):
        descriptor["annotations"] = json.loads(unit["annotations_json"])
    return descriptor


def list_referrers(db: Collections, repo_id: str | None, subject: str,
                   artifact_type: str | None = None) -> list[dict[str, Any]]:
    """Descriptors of the manifests of ``repo_id`` whose ``subject`` is ``subject``, by digest."""
    if repo_id is None:
        return []
    units = {unit["_id"]: unit for unit in db.manifests.find({"subject": subject})}
    held = {a["digest"] for a in db.repo_manifests.find(
        {"repo_id": repo_id, "digest": {"$in": sorted(units)}, REMOVING: VISIBLE}, {"digest": 1})} if units else set()
    found = [referrer_descriptor(units[digest]) for digest in sorted(held)]
    if artifact_type:
        found = [descriptor for descriptor in found if descriptor.get("artifactType") == artifact_type]
    return found
