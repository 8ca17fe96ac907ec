"""``pulp-registry verify``: is every blob and manifest the database refers to in content storage, intact?

The digests referred to are those of the ``blobs`` and ``manifests`` units, of
the repositories' associations (``repo_blobs``, ``repo_manifests``), of tags and
of the config and layers each manifest needs. Each one's file must exist with
the size the database records and, unless ``quick``, the digest recomputed
from its bytes. Files nobody refers to are orphan clean-up's business, not a problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pulp_registry.oci import Digester, digest_algorithm, is_digest

CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Problem:
    digest: str
    kind: str          # "blob" or "manifest"
    message: str

    def __str__(self) -> str:
        return f"{self.digest} ({self.kind}): {self.message}"


@dataclass
class Reference:
    kind: str
    size: int | None
    #: Where the database names it (for the problem line): the first place found.
    where: str


@dataclass
class VerifyResult:
    blobs: int = 0
    manifests: int = 0
    checked_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        problems = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}" if self.problems \
            else "no problems"
        return (f"verify: checked {self.blobs} blobs and {self.manifests} manifests "
                f"({self.checked_bytes / (1024 * 1024):.1f} MiB): {problems}")


def referenced_content(db: Any) -> dict[str, Reference]:
    """Every digest the database refers to, with the size it records and its kind."""
    found: dict[str, Reference] = {}

    def add(digest: Any, kind: str, size: Any, where: str) -> None:
        if not isinstance(digest, str):
            return
        reference = found.get(digest)
        if reference is None:
            found[digest] = Reference(kind, int(size) if size is not None else None, where)
        elif reference.size is None and size is not None:
            reference.size = int(size)

    for unit in db.manifests.find({}, {"size": 1, "blob_digests": 1}):
        add(unit["_id"], "manifest", unit.get("size"), "manifests")
        for blob_digest in unit.get("blob_digests") or []:
            add(blob_digest, "blob", None, f"manifest {unit['_id']}")
    for unit in db.blobs.find({}, {"size": 1}):
        add(unit["_id"], "blob", unit.get("size"), "blobs")
    for association in db.repo_manifests.find({}, {"digest": 1, "size": 1, "repo_id": 1}):
        add(association.get("digest"), "manifest", association.get("size"), f"repository {association.get('repo_id')}")
    for association in db.repo_blobs.find({}, {"digest": 1, "size": 1, "repo_id": 1}):
        add(association.get("digest"), "blob", association.get("size"), f"repository {association.get('repo_id')}")
    for tag in db.tags.find({}, {"manifest_digest": 1, "name": 1, "repo_id": 1}):
        add(tag.get("manifest_digest"), "manifest", None, f"tag {tag.get('name')} of {tag.get('repo_id')}")
    return found


def check_file(storage: Any, digest: str, reference: Reference, quick: bool) -> tuple[int, str | None]:
    """Bytes read and what is wrong with the stored file of ``digest`` (None: nothing)."""
    if not is_digest(digest):
        return 0, f"not a valid digest (named by {reference.where})"
    stored_size = storage.size(digest)
    if stored_size is None:
        return 0, f"missing from content storage (named by {reference.where})"
    if reference.size is not None and stored_size != reference.size:
        return 0, f"is {stored_size} bytes in content storage, the database says {reference.size}"
    if quick:
        return stored_size, None
    digester = Digester(digest_algorithm(digest))
    try:
        with storage.open(digest) as source:
            while chunk := source.read(CHUNK_SIZE):
                digester.update(chunk)
    except FileNotFoundError:
        return 0, f"missing from content storage (named by {reference.where})"
    if digester.digest != digest:
        return digester.size, f"damaged: its bytes have digest {digester.digest}"
    return digester.size, None


def verify_content(services: Any, quick: bool = False,
                   on_problem: Callable[[Problem], None] | None = None) -> VerifyResult:
    """Check every referenced blob and manifest; ``on_problem`` hears of each problem as it is found."""
    result = VerifyResult()
    for digest, reference in sorted(referenced_content(services.db).items()):
        if reference.kind == "manifest":
            result.manifests += 1
        else:
            result.blobs += 1
        read, message = check_file(services.storage, digest, reference, quick)
        result.checked_bytes += read
        if message is not None:
            problem = Problem(digest, reference.kind, message)
            result.problems.append(problem)
            if on_problem is not None:
                on_problem(problem)
    return result
