"""The settings of a feed: their defaults, and the validation of a feed body (``validate_feed``).

Pure: no database. ``feeds.py`` stores, reads and applies what this accepts.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Any, Mapping
from urllib.parse import urlsplit

from pulp_registry import oci
from pulp_registry.registry_errors import RegistryError

#: Hosts of Docker Hub: a one-component name there is an official image under ``library/``.
DOCKER_HUB_HOSTS = frozenset({"registry-1.docker.io", "docker.io", "index.docker.io"})
#: ``docker.io`` does not serve the registry API itself: its API host is this one.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
TAG_MATCHES = ("glob", "regex")
MODES = ("additive", "mirror")
MAX_DOWNLOADS = 32
MIN_SYNC_INTERVAL = 60
MAX_SYNC_INTERVAL = 366 * 24 * 3600
MAX_PATTERNS = 1000
MAX_CA_BUNDLE = 1024 * 1024
PLATFORM_RE = re.compile(r"^[a-z0-9._-]+/[a-z0-9._-]+(?:/[a-z0-9._-]+)?$")
#: Variants a platform without one means (containerd's normalization).
DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}

#: The settings of a feed with their defaults (``url`` has none; ``upstream_name`` defaults to the
#: repository's own name). ``credentials`` is the input of the secrets, not a stored setting.
DEFAULTS: dict[str, Any] = {
    "url": None,
    "upstream_name": None,
    "include_tags": [],
    "exclude_tags": [],
    "tag_match": "glob",
    "tags": [],
    "digests": [],
    "platforms": [],
    "mode": "additive",
    "tls_verify": True,
    "ca_bundle": None,
    "max_downloads": 4,
    "requests_per_second": 0.0,
    "sync_interval": 0,
    "referrers": True,
    "publish": True,
}
FEED_KEYS = (*DEFAULTS, "credentials")
CREDENTIAL_KEYS = ("username", "password", "token")


class FeedError(ValueError):
    """An invalid feed setting; ``field`` names it as ``feed.<key>``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message



# --- validation -------------------------------------------------------------------


def _string_list(body: Mapping[str, Any], key: str) -> list[str]:
    values = body.get(key)
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(value, str) and value for value in values):
        raise FeedError(f"feed.{key}", f"{key} must be a list of non-empty strings")
    if len(values) > MAX_PATTERNS:
        raise FeedError(f"feed.{key}", f"{key} holds at most {MAX_PATTERNS} entries")
    return list(dict.fromkeys(values))  # without repeats, in the order given


def _bool(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key)
    if value is None:
        return DEFAULTS[key]
    if not isinstance(value, bool):
        raise FeedError(f"feed.{key}", f"{key} must be true or false")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_url(url: Any) -> tuple[str, str]:
    """``https://host[:port]`` (a trailing ``/`` is dropped); return it and its host."""
    if not isinstance(url, str) or not url:
        raise FeedError("feed.url", "url is required: the upstream registry, like https://registry.example.com")
    if "@" in url:  # never quote it: it may hold a password
        raise FeedError("feed.url", "url must not hold credentials: give them as credentials (kept secret)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FeedError("feed.url", f"url must start with https:// or http://, not {url!r}")
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for an invalid port
    except ValueError:
        raise FeedError("feed.url", f"url {url!r} has an invalid port") from None
    if not host:
        raise FeedError("feed.url", f"url {url!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise FeedError("feed.url", "url must be the registry's address only (scheme://host[:port]), "
                                    "without a path or query; put the repository in upstream_name")
    if host == "docker.io":
        return f"{parts.scheme}://{DOCKER_HUB_API_HOST}", DOCKER_HUB_API_HOST
    return f"{parts.scheme}://{parts.netloc}", host


def validate_upstream_name(name: Any, host: str) -> str:
    try:
        oci.validate_name(name)
    except RegistryError as exc:
        raise FeedError("feed.upstream_name", f"upstream_name: {exc.message}") from None
    if host in DOCKER_HUB_HOSTS and "/" not in name:
        name = f"library/{name}"
    return name


@functools.lru_cache(maxsize=1024)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _patterns(body: Mapping[str, Any], key: str, tag_match: str) -> list[str]:
    patterns = _string_list(body, key)
    for pattern in patterns:
        if len(pattern) > 1024 or any(ord(char) < 32 for char in pattern):
            raise FeedError(f"feed.{key}", f"{key}: pattern {pattern[:40]!r} is too long or holds control characters")
        if tag_match == "regex":
            try:
                compiled_pattern(pattern)
            except re.error as exc:
                raise FeedError(f"feed.{key}", f"{key}: invalid regular expression {pattern!r}: {exc}") from None
    return patterns


def validate_ca_bundle(ca_bundle: Any) -> str | None:
    if ca_bundle is None:
        return None
    if not isinstance(ca_bundle, str) or len(ca_bundle) > MAX_CA_BUNDLE:
        raise FeedError("feed.ca_bundle", "ca_bundle must be PEM text (at most 1 MiB)")
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(ca_bundle.encode())
    except (ValueError, TypeError):
        raise FeedError("feed.ca_bundle", "ca_bundle holds no valid PEM certificate "
                                          "(-----BEGIN CERTIFICATE----- ...)") from None
    return ca_bundle


def validate_credentials(credentials: Any) -> dict[str, str | None] | None:
    """``{"username", "password"}`` or ``{"token"}`` (with an optional username); ``None`` for none."""
    if credentials is None:
        return None
    if not isinstance(credentials, Mapping):
        raise FeedError("feed.credentials", "credentials must be an object: username and password, or token")
    for key in credentials:
        if key not in CREDENTIAL_KEYS:
            raise FeedError(f"feed.credentials.{key}",
                            f"unknown field {key!r} in credentials; allowed: {', '.join(CREDENTIAL_KEYS)}")
    values: dict[str, str | None] = {}
    for key in CREDENTIAL_KEYS:
        value = credentials.get(key)
        if value is not None and (not isinstance(value, str) or not value
                                  or any(ord(char) < 32 or ord(char) == 127 for char in value)):
            # Never quote the value: it may be a secret.
            raise FeedError(f"feed.credentials.{key}", f"credentials {key} must be a non-empty string "
                                                       "without control characters")
        values[key] = value
    if values["password"] and values["token"]:
        raise FeedError("feed.credentials", "give a password or a token, not both")
    if values["password"] and not values["username"]:
        raise FeedError("feed.credentials.username", "a password needs a username")
    if not values["password"] and not values["token"]:
        raise FeedError("feed.credentials", "credentials need a password (with a username) or a token")
    if values["username"] is not None and ":" in values["username"]:
        raise FeedError("feed.credentials.username", "a username cannot contain ':'")
    return values


def validate_feed(body: Any, *, repository_name: str | None = None) -> dict[str, Any]:
    """A whole feed body checked and normalized: the settings to store (``credentials`` kept as given).

    Raises ``FeedError`` naming the first invalid field as ``feed.<key>``. ``upstream_name`` defaults
    to ``repository_name`` when given.
    """
    if not isinstance(body, Mapping):
        raise FeedError("feed", "feed must be an object (or null to remove the feed)")
    for key in body:
        if key not in FEED_KEYS:
            raise FeedError(f"feed.{key}", f"unknown feed setting {key!r}; known: {', '.join(FEED_KEYS)}")
    url, host = validate_url(body.get("url"))
    upstream_name = body.get("upstream_name")
    if upstream_name is None:
        if repository_name is None:
            raise FeedError("feed.upstream_name", "upstream_name is required: the repository's name upstream")
        upstream_name = repository_name
    feed: dict[str, Any] = {"url": url, "upstream_name": validate_upstream_name(upstream_name, host)}
    tag_match = body.get("tag_match") or "glob"
    if tag_match not in TAG_MATCHES:
        raise FeedError("feed.tag_match", f"tag_match must be one of {', '.join(TAG_MATCHES)}")
    feed["include_tags"] = _patterns(body, "include_tags", tag_match)
    feed["exclude_tags"] = _patterns(body, "exclude_tags", tag_match)
    feed["tag_match"] = tag_match
    feed["tags"] = _string_list(body, "tags")
    for tag in feed["tags"]:
        if not oci.TAG_RE.match(tag):
            raise FeedError("feed.tags", f"invalid tag {tag!r}: [A-Za-z0-9_] then up to 127 of [A-Za-z0-9._-]")
    feed["digests"] = _string_list(body, "digests")
    for digest in feed["digests"]:
        if not oci.is_digest(digest):
            raise FeedError("feed.digests", f"invalid digest {digest!r}: expected sha256:<64 lowercase hex>")
    if (feed["tags"] or feed["digests"]) and (feed["include_tags"] or feed["exclude_tags"]):
        raise FeedError("feed.tags", "give either explicit tags/digests or include_tags/exclude_tags patterns, "
                                     "not both (set the other to null)")
    feed["platforms"] = _string_list(body, "platforms")
    for platform in feed["platforms"]:
        if not PLATFORM_RE.match(platform):
            raise FeedError("feed.platforms", f"invalid platform {platform!r}: os/architecture[/variant], "
                                              "like linux/amd64 or linux/arm64/v8")
    mode = body.get("mode") or "additive"
    if mode not in MODES:
        raise FeedError("feed.mode", f"mode must be one of {', '.join(MODES)}")
    feed["mode"] = mode
    feed["tls_verify"] = _bool(body, "tls_verify")
    feed["ca_bundle"] = validate_ca_bundle(body.get("ca_bundle"))
    max_downloads = body.get("max_downloads")
    if max_downloads is None:
        max_downloads = DEFAULTS["max_downloads"]
    if not isinstance(max_downloads, int) or isinstance(max_downloads, bool) \
            or not 1 <= max_downloads <= MAX_DOWNLOADS:
        raise FeedError("feed.max_downloads", f"max_downloads must be a whole number from 1 to {MAX_DOWNLOADS}")
    feed["max_downloads"] = max_downloads
    rate = body.get("requests_per_second")
    if rate is None:
        rate = DEFAULTS["requests_per_second"]
    if not _number(rate) or not math.isfinite(rate) or rate < 0:
        raise FeedError("feed.requests_per_second", "requests_per_second must be a number >= 0 (0: unlimited)")
    feed["requests_per_second"] = float(rate)
    interval = body.get("sync_interval")
    if interval is None:
        interval = 0
    if not isinstance(interval, int) or isinstance(interval, bool) \
            or not (interval == 0 or MIN_SYNC_INTERVAL <= interval <= MAX_SYNC_INTERVAL):
        raise FeedError("feed.sync_interval", f"sync_interval must be 0 (manual syncs only) or whole seconds "
                                              f"from {MIN_SYNC_INTERVAL} to {MAX_SYNC_INTERVAL}")
    feed["sync_interval"] = interval
    feed["referrers"] = _bool(body, "referrers")
    feed["publish"] = _bool(body, "publish")
    if "credentials" in body:
        feed["credentials"] = validate_credentials(body["credentials"])
    return feed
