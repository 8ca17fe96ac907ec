"""A client of an upstream registry: what a sync reads (tags, manifests, blobs, referrers).

One ``requests.Session`` shared by the blob pool's threads. Auth follows the
registry's 401 challenge: Basic, or the Docker token flow (a token per scope,
reused until it expires); a static bearer token is sent from the start.
Requests that fail for a passing reason (5xx, 429, a dropped connection) are
retried with backoff a bounded number of times; the rest fail at once with an
``UpstreamError`` whose one line says what and where.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urljoin

import requests
import urllib3

from pulp_registry import oci

log = logging.getLogger(__name__)

#: Every manifest media type we store, lists and indexes included: the upstream then never
#: converts what it holds into another type (whose digest would differ).
MANIFEST_ACCEPT = ", ".join(oci.MANIFEST_MEDIA_TYPES)
CHUNK_SIZE = 1024 * 1024
DOCKER_HUB_HOSTS = ("registry-1.docker.io", "docker.io", "index.docker.io")
#: Cosign's tags beside an image (``sha256-<hex>.sig`` ...), brought along as referrers.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
_RETRY_STATUSES = {429, 500, 502, 503, 504}
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class UpstreamError(Exception):
    """The upstream registry cannot give what the sync needs; the message says what and where."""


@dataclass(frozen=True)
class Fetched:
    """A manifest as the upstream sent it: exact bytes, media type and digest of those bytes."""

    raw: bytes
    media_type: str
    digest: str


class BlobStream:
    """The chunks of one blob download, with the size the upstream announced (None if unknown)."""

    def __init__(self, response: requests.Response, digest: str) -> None:
        self.response = response
        self.digest = digest
        length = response.headers.get("Content-Length")
        self.size: int | None = int(length) if length and length.isdigit() else None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self.response.iter_content(CHUNK_SIZE)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.Timeout) as exc:
            raise UpstreamError(f"download of blob {self.digest} broke off: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    """One line of an exception (requests' messages nest the whole reason chain)."""
    return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__


def upstream_repository(feed: Any) -> str:
    """The repository name upstream: Docker Hub names without ``/`` live under ``library/``."""
    name = feed.upstream_name.strip("/")
    host = feed.url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    if host in DOCKER_HUB_HOSTS and "/" not in name:
        name = f"library/{name}"
    return name


def registry_url(feed: Any) -> str:
    """The registry's base URL; Docker Hub's API is on ``registry-1.docker.io``."""
    url = feed.url.rstrip("/")
    scheme, rest = url.split("://", 1)
    if rest in ("docker.io", "index.docker.io"):
        return f"{scheme}://registry-1.docker.io"
    return url


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class UpstreamClient:
    """Reads one repository of an upstream registry as ``feed`` describes it."""

    def __init__(self, feed: Any, *, max_tries: int = 5, backoff_seconds: float = 0.5,
                 max_wait_seconds: float = 30.0, timeout_seconds: float = 60.0) -> None:
        self.feed = feed
        self.base_url = registry_url(feed)
        self.name = upstream_repository(feed)
        self.max_tries = max(1, max_tries)
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.timeout_seconds = timeout_seconds
        #: Requests sent, by anyone (tests count them).
        self.requests_sent = 0
        self.session = requests.Session()
        self._ca_file: str | None = None
        # Passed on every request: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE in requests.
        self._verify = self._verify_setting()
        self._lock = threading.Lock()
        self._auth_lock = threading.Lock()   # one thread at a time asks for a token
        self._auth_header: str | None = f"Bearer {feed.token}" if getattr(feed, "token", None) else None
        self._token_expires: float | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._rate = float(getattr(feed, "requests_per_second", 0) or 0)
        self._next_slot = 0.0

    # --- lifetime --------------------------------------------------------------------

    def _verify_setting(self) -> bool | str:
        if not getattr(self.feed, "tls_verify", True):
            # The administrator chose it for this feed: say so once, not in a warning per request.
            log.warning("TLS certificates of %s are not verified (the feed's tls_verify is off)", self.base_url)
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            return False
        ca_bundle = getattr(self.feed, "ca_bundle", None)
        if not ca_bundle:
            return True
        fd, self._ca_file = tempfile.mkstemp(prefix="feed-ca-", suffix=".pem")
        with os.fdopen(fd, "w") as out:
            out.write(ca_bundle)
        return self._ca_file

    def close(self) -> None:
        self.session.close()
        if self._ca_file:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._ca_file)
            self._ca_file = None

    def __enter__(self) -> "UpstreamClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # --- what a sync reads -------------------------------------------------------------

    def list_tags(self, page_size: int | None = None) -> list[str]:
        """Every tag of the upstream repository, following ``Link`` pagination (``page_size``:
        ask for pages of that many; by default the upstream chooses)."""
        tags: list[str] = []
        url: str | None = f"{self.base_url}/v2/{self.name}/tags/list" + (f"?n={page_size}" if page_size else "")
        seen: set[str] = set()
        while url and url not in seen:
            seen.add(url)
            response = self._request("GET", url, what="tag list")
            try:
                page = response.json().get("tags") or []
            except ValueError:
                raise UpstreamError(f"tag list of {self.name} at {self.base_url} is not JSON") from None
            tags.extend(tag for tag in page if isinstance(tag, str))
            match = _LINK_NEXT.search(response.headers.get("Link", ""))
            url = urljoin(url, match.group(1)) if match else None
        return list(dict.fromkeys(tags))

    def get_manifest(self, reference: str) -> Fetched:
        """The manifest ``reference`` (tag or digest) names; a digest is checked against the bytes."""
        response = self._request("GET", self._url("manifests", reference), what=f"manifest {reference}",
                                 headers={"Accept": MANIFEST_ACCEPT})
        return self._fetched(reference, response)

    def find_manifest(self, reference: str) -> Fetched | None:
        """Like ``get_manifest``, None where the upstream has no such manifest (404)."""
        response = self._request("GET", self._url("manifests", reference), what=f"manifest {reference}",
                                 headers={"Accept": MANIFEST_ACCEPT}, missing_ok=True)
        return None if response is None else self._fetched(reference, response)

    def _fetched(self, reference: str, response: requests.Response) -> Fetched:
        raw = response.content
        algorithm = oci.digest_algorithm(reference) if oci.is_digest(reference) else "sha256"
        digest = oci.compute_digest(raw, algorithm)
        if oci.is_digest(reference) and digest != reference:
            raise UpstreamError(f"manifest {reference} from {self.base_url}/{self.name} has digest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        return Fetched(raw, media_type, digest)

    @contextlib.contextmanager
    def open_blob(self, digest: str) -> Iterator[BlobStream]:
        """A streaming download of blob ``digest`` (the caller hashes and checks it)."""
        response = self._request("GET", self._url("blobs", digest), what=f"blob {digest}", stream=True)
        try:
            yield BlobStream(response, digest)
        finally:
            response.close()

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests whose subject is ``digest``: the referrers API, else the
        OCI fallback tag ``sha256-<hex>`` (an index of them); [] where there are none."""
        response = self._request("GET", self._url("referrers", digest), what=f"referrers of {digest}",
                                 missing_ok=True, headers={"Accept": oci.OCI_INDEX})
        index: Any = None
        if response is not None and response.headers.get("Content-Type", "").startswith(oci.OCI_INDEX):
            index = _json_or_none(response.content)
        if index is None:
            fallback = self.find_manifest(fallback_tag(digest))
            index = _json_or_none(fallback.raw) if fallback and fallback.media_type in oci.LIST_MEDIA_TYPES else None
        manifests = index.get("manifests") if isinstance(index, dict) else None
        return [entry for entry in manifests or [] if isinstance(entry, dict) and oci.is_digest(str(entry.get("digest")))]

    def cosign_tags(self, digest: str, known_tags: list[str] | None = None) -> list[str]:
        """Cosign's tags of ``digest`` (``sha256-<hex>.sig`` ...) the upstream has: from the tag
        list when it was read, else asked one by one."""
        candidates = [fallback_tag(digest) + suffix for suffix in COSIGN_SUFFIXES]
        if known_tags is not None:
            known = set(known_tags)
            return [tag for tag in candidates if tag in known]
        return [tag for tag in candidates if self._request(
            "HEAD", self._url("manifests", tag), what=f"manifest {tag}", missing_ok=True,
            headers={"Accept": MANIFEST_ACCEPT}) is not None]

    # --- requests, auth and retries -------------------------------------------------------

    def _url(self, kind: str, reference: str) -> str:
        return f"{self.base_url}/v2/{self.name}/{kind}/{reference}"

    def _wait_for_slot(self) -> None:
        """At most ``requests_per_second`` requests start per second, across threads."""
        if self._rate <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + 1.0 / self._rate
        if start > now:
            time.sleep(start - now)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        with self._lock:
            expired = self._token_expires is not None and time.monotonic() >= self._token_expires
        if expired:   # the token ran out: take a new one before the upstream refuses it
            self._reauthenticate(self._auth_header)
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        return headers

    def _request(self, method: str, url: str, *, what: str, headers: dict[str, str] | None = None,
                 stream: bool = False, missing_ok: bool = False) -> Any:
        """Send with auth and retries; the response (None for a 404 when ``missing_ok``)."""
        authenticated = False
        problem = ""
        for attempt in range(1, self.max_tries + 1):
            self._wait_for_slot()
            sent_auth = self._auth_header
            try:
                self.requests_sent += 1
                response = self.session.request(method, url, headers=self._headers(headers), stream=stream,
                                                timeout=self.timeout_seconds, allow_redirects=True,
                                                verify=self._verify)
            except requests.exceptions.SSLError as exc:
                raise UpstreamError(f"TLS error talking to {self.base_url}: {_short(exc)}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = f"connection failed ({_short(exc)})"
                self._back_off(attempt, None)
                continue
            status = response.status_code
            if status == 401 and not authenticated:
                challenge = response.headers.get("WWW-Authenticate", "")
                response.close()
                if not challenge:
                    raise UpstreamError(f"{what}: {self.base_url} answered 401 with no challenge")
                with self._lock:
                    self._challenge = parse_challenge(challenge)
                self._reauthenticate(sent_auth, refused=True)
                authenticated = True
                continue
            if status in _RETRY_STATUSES:
                problem = f"{status} {response.reason}"
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._back_off(attempt, retry_after)
                continue
            if status == 404 and missing_ok:
                response.close()
                return None
            if status >= 400:
                response.close()
                hint = " (check the feed's credentials)" if status in (401, 403) else ""
                raise UpstreamError(f"{what} of {self.name} at {self.base_url}: {status} {response.reason}{hint}")
            return response
        raise UpstreamError(f"{what} of {self.name} at {self.base_url}: {problem} after {self.max_tries} tries")

    def _back_off(self, attempt: int, retry_after: str | None) -> None:
        if attempt >= self.max_tries:
            return
        wait = self.backoff_seconds * (2 ** (attempt - 1))
        if retry_after and retry_after.strip().isdigit():
            wait = float(retry_after.strip())
        time.sleep(min(wait, self.max_wait_seconds))

    def _reauthenticate(self, sent_auth: str | None, refused: bool = False) -> None:
        """Authenticate unless another thread already replaced the header ``sent_auth`` was."""
        with self._auth_lock:
            if self._auth_header != sent_auth:
                return
            expired = self._token_expires is not None and time.monotonic() >= self._token_expires
            if refused or expired:
                self._authenticate()

    def _authenticate(self) -> None:
        """Answer the last challenge: Basic credentials, or a token from the realm for our scope."""
        if self._challenge is None:
            return
        scheme, params = self._challenge
        username, password = getattr(self.feed, "username", None), getattr(self.feed, "password", None)
        if scheme == "basic":
            if not username:
                raise UpstreamError(f"{self.base_url} asks for a user name and password; the feed has none")
            self._auth_header = requests.auth._basic_auth_str(username, password or "")
            return
        if scheme != "bearer" or "realm" not in params:
            raise UpstreamError(f"{self.base_url} asks for an authentication we do not speak: {scheme}")
        if getattr(self.feed, "token", None) and self._token_expires is None and self._auth_header:
            raise UpstreamError(f"{self.base_url} refused the feed's token (401)")
        query = {"scope": f"repository:{self.name}:pull"}
        if params.get("service"):
            query["service"] = params["service"]
        auth = (username, password or "") if username else None
        try:
            response = self.session.get(params["realm"], params=query, auth=auth, timeout=self.timeout_seconds,
                                        verify=self._verify)
            self.requests_sent += 1
        except requests.RequestException as exc:
            raise UpstreamError(f"token request to {params['realm']} failed: {_short(exc)}") from None
        if response.status_code != 200:
            raise UpstreamError(f"token request to {params['realm']} for {self.name}: {response.status_code} "
                                f"{response.reason}" + (" (check the feed's credentials)" if auth else ""))
        body = _json_or_none(response.content) or {}
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise UpstreamError(f"token server {params['realm']} answered no token")
        expires_in = body.get("expires_in")
        lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 60.0
        with self._lock:
            self._auth_header = f"Bearer {token}"
            # Renew a little before the end, so a request in flight does not carry a dead token.
            self._token_expires = time.monotonic() + max(lifetime - min(10.0, lifetime / 10), 1.0)


def fallback_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>``: the tag schema of OCI's referrers fallback and of cosign."""
    return digest.replace(":", "-", 1)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
