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
kept on that repository object (``PublishedRepository.prepared``, at most
``MAX_PER_REPOSITORY``), so a repeated request is a few dict lookups and
``start_response``, an answer is never served for a version no longer served
(a new version is a new object, with none), and answers go with their
repository when the repository cache drops it. Manifest bytes still come from
``PublishedTree.manifest_bytes`` (its bounded, verified cache), so answers
hold headers only. Each answer is counted for ``/metrics`` with a few int
additions (``CraneMetrics.record``): a ``prometheus_client`` call per request
would cost more than the answer.
"""
from __future__ import annotations

from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Iterable, NamedTuple

from pulp_registry import oci
from pulp_registry.registry_errors import API_VERSION, API_VERSION_HEADER
from pulp_registry.request_log import ROUTE_KEY

from crane.config import CraneSettings
from crane.negotiation import find_manifest, negotiate
from crane.published import ContentMissing, ManifestInfo, PublishedRepository, PublishedTree
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
#: Prepared answers per repository; past this they start again (odd Accept headers must not grow them for ever).
MAX_PER_REPOSITORY = 64
#: ``Answer.kind``: the index of what is answered in ``crane.metrics.FAST_KINDS``.
MANIFEST_GET, MANIFEST_HEAD, BLOB_HEAD = 0, 1, 2


class Answer(NamedTuple):
    """A prepared 200 of the repository version it is kept on."""

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
        #: The tree's cached repositories by name (the cache only ever changes this dict, never replaces it).
        self._cached = tree.repositories.items

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
        rest = path[len(PREFIX):]
        name, found, reference = rest.rpartition(MANIFESTS)
        if found and name and reference and "/" not in reference:
            key: tuple[Any, ...] = (method, reference, accept)
        else:
            name, found, reference = rest.rpartition(BLOBS)
            if not (method == "HEAD" and found and name and reference and "/" not in reference):
                return None
            key = (BLOB_HEAD, reference)
        cached = self._cached   # ``tree.repository`` inlined for a hit: two C calls (see crane.repository_cache)
        repository = cached.get(name)
        if repository is not None:
            try:
                cached.move_to_end(name)
            except KeyError:
                pass
        elif key[0] != BLOB_HEAD and ":" not in reference:   # by tag (tags have no ":"): maybe one short read
            repository = tree.repository_for_tag(name, reference)
            if repository is None:
                return None
        else:
            repository = tree.repository(name)
            if repository is None:
                return None
        answers = repository.prepared
        answer = answers.get(key)
        if answer is None:
            if key[0] == BLOB_HEAD:
                answer = self._prepare_blob(repository, name, reference)
            else:
                answer = self._prepare_manifest(method, repository, name, reference, accept)
            if answer is None:
                return None
            if len(answers) >= MAX_PER_REPOSITORY:
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

    def _prepare_manifest(self, method: str, repository: PublishedRepository, name: str, reference: str,
                          accept: str | None) -> Answer | None:
        """The 200 Flask would send, or None if Flask has to answer (an error, or anything unusual)."""
        if not anonymous_may_pull(repository, self.settings):   # as access.py decides without the request
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
        return Answer(headers, manifest, size, MANIFEST_GET if method == "GET" else MANIFEST_HEAD)

    def _prepare_blob(self, repository: PublishedRepository, name: str, digest: str) -> Answer | None:
        if not anonymous_may_pull(repository, self.settings):
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
        return Answer(headers, None, size, BLOB_HEAD)
