"""``FastPath``: answers the hot pull requests from memory in front of the Flask app.

``docker pull`` and friends send mostly manifest GET/HEAD and blob HEAD; Flask's
routing, request objects and hooks cost more than the answer itself. This WSGI
middleware answers exactly those requests when they are plain (a loaded,
unprotected repository, anonymous pull allowed, no ``If-None-Match``,
``Range`` or query string) and hands every other request, and every one it
cannot answer with a 200, to Flask unchanged. ``Authorization`` is not looked
at: Flask does not read it for such a pull either (``crane.views.access``), and
with token auth on every client sends one (an anonymous token, after the
``/v2/`` challenge), so the hot path must not depend on it. Flask stays the
full implementation: the answers here are built with the same functions the
views use (``find_manifest``/``negotiate``, ``manifest_headers``,
``blob_headers``, ``oci.validate_*``) and tests compare both paths byte for byte.

Header lists are built once per (repository version, path, ``Accept``) and
kept while that version is served, so a repeated request is a dict lookup and
``start_response``. Manifest bytes still come from ``PublishedTree.manifest_bytes``
(its bounded, verified cache), so this cache holds headers only. Each answer
is counted for ``/metrics`` with a few int additions (``CraneMetrics.record``):
a ``prometheus_client`` call per request would cost more than the answer.
"""
from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from pulp_registry import oci
from pulp_registry.registry_errors import API_VERSION, API_VERSION_HEADER
from pulp_registry.request_log import ROUTE_KEY

from crane.config import CraneSettings
from crane.negotiation import find_manifest, negotiate
from crane.published import ContentMissing, ManifestInfo, PublishedRepository, PublishedTree, Snapshot
from crane.views.access import anonymous_may_pull
from crane.views.blobs import OCTET_STREAM, blob_headers
from crane.views.manifests import manifest_headers

if TYPE_CHECKING:
    from crane.metrics import CraneMetrics

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

PREFIX = "/v2/"
MANIFESTS = "/manifests/"
BLOBS = "/blobs/"
OK = "200 OK"
#: Cached answers per process; past this the cache starts again (odd Accept headers must not grow it for ever).
MAX_ENTRIES = 10_000
#: ``Answer.kind``: the index of what is answered in ``crane.metrics.FAST_KINDS``.
MANIFEST_GET, MANIFEST_HEAD, BLOB_HEAD = 0, 1, 2


class Answer(NamedTuple):
    """A prepared 200: valid while ``repository`` is the version served under ``name``."""

    name: str
    repository: PublishedRepository
    headers: list[tuple[str, str]]
    #: The manifest whose bytes a GET sends; None for a blob HEAD.
    manifest: ManifestInfo | None
    size: int
    kind: int = MANIFEST_GET


class FastPath:
    """WSGI middleware: prepared answers for plain manifest GET/HEAD and blob HEAD, Flask for the rest."""

    def __init__(self, app: WSGIApp, settings: CraneSettings, tree: PublishedTree,
                 metrics: "CraneMetrics | None" = None, routes: tuple[str, ...] | None = None) -> None:
        self.app = app
        #: Counts each answer (plain ints, see ``crane.metrics``); None: metrics off.
        self.metrics = metrics
        #: Route templates by ``Answer.kind`` put into the environ for the request log; None: no request log.
        self.routes = routes
        self.settings = settings
        self.tree = tree
        #: Without anonymous pull every pull is Flask's (a token check); settings never change.
        self.anonymous_pull = settings.anonymous_pull
        self._answers: dict[tuple[str, str, str | None], Answer] = {}
        self._snapshot: Snapshot | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "GET" or method == "HEAD":
            path = environ.get("PATH_INFO", "")
            if (path.startswith(PREFIX) and self.anonymous_pull and not environ.get("QUERY_STRING")
                    and "HTTP_IF_NONE_MATCH" not in environ and "HTTP_RANGE" not in environ
                    and "HTTP_IF_RANGE" not in environ):
                started = perf_counter()
                answered = self._answer(method, path, environ.get("HTTP_ACCEPT"), start_response)
                if answered is not None:
                    answer, body = answered
                    if self.metrics is not None:
                        self.metrics.record(answer.kind, answer.size if body else 0, perf_counter() - started)
                    if self.routes is not None:
                        environ[ROUTE_KEY] = self.routes[answer.kind]
                    return body
        return self.app(environ, start_response)

    def _answer(self, method: str, path: str, accept: str | None,
                start_response: Callable[..., Any]) -> tuple[Answer, list[bytes]] | None:
        tree = self.tree
        tree.refresh_if_due()
        snapshot = tree.snapshot
        if snapshot is not self._snapshot:
            self._answers = {}   # drop answers of versions no longer served
            self._snapshot = snapshot
        key = (method, path, accept)
        answer = self._answers.get(key)
        if answer is None or snapshot.repositories.get(answer.name) is not answer.repository:
            answer = self._prepare(method, path, accept, snapshot)
            if answer is None:
                return None
            answers = self._answers
            if len(answers) >= MAX_ENTRIES:
                answers.clear()
            answers[key] = answer
        if method == "HEAD":
            start_response(OK, answer.headers)
            return answer, []
        if answer.manifest is None:
            return None
        try:
            data = tree.manifest_bytes(answer.manifest)
        except ContentMissing:
            return None
        if len(data) != answer.size:
            return None
        start_response(OK, answer.headers)
        return answer, [data]

    def _prepare(self, method: str, path: str, accept: str | None, snapshot: Snapshot) -> Answer | None:
        """The 200 Flask would send, or None if Flask has to answer (an error, or anything unusual)."""
        rest = path[len(PREFIX):]
        name, found, reference = rest.rpartition(MANIFESTS)
        if found and name and reference and "/" not in reference:
            return self._prepare_manifest(method, name, reference, accept, snapshot)
        name, found, digest = rest.rpartition(BLOBS)
        if method == "HEAD" and found and name and digest and "/" not in digest:
            return self._prepare_blob(name, digest, snapshot)
        return None

    def _repository(self, name: str, snapshot: Snapshot) -> PublishedRepository | None:
        """The repository if Flask would let anyone pull it without reading the request (see access.py)."""
        repository = snapshot.repositories.get(name)
        if repository is None or not anonymous_may_pull(repository, self.settings):
            return None
        return repository

    def _prepare_manifest(self, method: str, name: str, reference: str, accept: str | None,
                          snapshot: Snapshot) -> Answer | None:
        repository = self._repository(name, snapshot)
        if repository is None:
            return None
        try:
            oci.validate_name(name)
            oci.validate_reference(reference)
            found, by_tag = find_manifest(repository, reference)
            manifest = negotiate(repository, found, by_tag, (accept,) if accept else ())
            # As the view: a GET sends the bytes it read, a HEAD the size repository.json lists.
            size = len(self.tree.manifest_bytes(manifest)) if method == "GET" else manifest.size
        except Exception:   # noqa: BLE001 - Flask produces the error response (and logs what is unexpected)
            return None
        headers = list(manifest_headers(manifest, by_tag, repository.protected).items())
        headers += [("Content-Length", str(size)), (API_VERSION_HEADER, API_VERSION)]
        return Answer(name, repository, headers, manifest, size, MANIFEST_GET if method == "GET" else MANIFEST_HEAD)

    def _prepare_blob(self, name: str, digest: str, snapshot: Snapshot) -> Answer | None:
        repository = self._repository(name, snapshot)
        if repository is None:
            return None
        try:
            oci.validate_name(name)
            oci.validate_digest(digest)
        except Exception:   # noqa: BLE001 - Flask produces the error response
            return None
        size = repository.holds_blob(digest)
        if size is None:
            return None
        headers = list(blob_headers(digest, repository.protected).items())
        headers += [("Content-Type", OCTET_STREAM), ("Content-Length", str(size)), (API_VERSION_HEADER, API_VERSION)]
        return Answer(name, repository, headers, None, size, BLOB_HEAD)
