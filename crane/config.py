"""Crane's own small settings: where the published tree is, how to listen, how to serve.

Built once at start-up by ``load_crane_settings`` from a YAML file
(``CRANE_CONFIG``), ``CRANE_*`` environment variables and command-line
overrides, in that order. A wrong key or value stops start-up with a
``ConfigError`` naming it (the ``token_public_key`` files are loaded once here,
through ``crane.tokens``, so an unreadable key stops start-up too). No request
state.

Token auth is on when ``token_public_key`` names the issuer's public key(s).
It then needs ``token_issuer`` and ``token_service`` (a token's ``iss`` and
``aud`` must match them), and it is what ``token_realm`` and
``anonymous_pull: false`` need: a challenge for tokens nothing can verify
would lock every client out. ``blob_serving: redirect`` is refused with it,
since the redirect's URL carries no token and would hand out protected blobs,
unless ``blob_storage`` is ``s3``: then the redirect is to a pre-signed URL
that expires after ``s3_url_expiry`` seconds, given only after the same checks.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, Callable, Mapping

from pulp_registry.config import ConfigError, check_tls_pair, load_settings

#: How a blob GET is answered (issue 3): the file itself through the WSGI server's
#: sendfile path, a hand-off to nginx (``X-Accel-Redirect``) or Apache/lighttpd
#: (``X-Sendfile``), or a redirect to a content URL (the original Crane's mode).
BLOB_SERVING_MODES = ("stream", "x-accel-redirect", "x-sendfile", "redirect")
BLOB_STORAGES = ("filesystem", "s3")
#: The longest a SigV4 pre-signed URL may be valid (7 days).
MAX_URL_EXPIRY = 604800
MAX_DEFAULT_WORKERS = 12


def default_workers() -> int:
    """gunicorn's rule of thumb (2 x cores + 1), capped: Crane answers from memory."""
    return min(2 * (os.cpu_count() or 1) + 1, MAX_DEFAULT_WORKERS)


@dataclasses.dataclass(frozen=True)
class CraneSettings:
    """Every key can be set in the YAML file or as ``CRANE_<KEY>``; see the README."""

    #: The published tree (``published_dir`` of the admin side).
    data_dir: str = "/var/lib/pulp-registry/published"
    #: ``host:port`` gunicorn listens on.
    bind: str = "127.0.0.1:5000"
    #: gunicorn worker processes; 0 means ``2 x cores + 1`` (at most 12).
    workers: int = 0
    #: Threads per worker (gthread), so slow blob downloads do not block manifest GETs.
    threads: int = 4
    #: Seconds a worker may spend on one request before gunicorn restarts it.
    timeout: int = 120
    #: At most this often (seconds) a request polls the journal for new publishes.
    poll_interval: float = 1.0
    #: Bytes of manifest content kept in memory per worker.
    manifest_cache_size: int = 64 * 1024 * 1024
    #: MiB of repository metadata kept per worker (loaded when first asked for, least recently used dropped).
    repository_cache_mib: int = 32
    #: ``stream``, ``x-accel-redirect``, ``x-sendfile`` or ``redirect`` (see BLOB_SERVING_MODES).
    blob_serving: str = "stream"
    #: For ``x-accel-redirect``: the internal location prefix mapped to ``<data_dir>/blobs``;
    #: for ``redirect``: the base URL blobs are served from (``<prefix>/<algorithm>/<hex>``).
    blob_url_prefix: str = ""
    #: ``stream``: at most this many bytes of a blob wait unsent in the kernel (``TCP_NOTSENT_LOWAT``,
    #: see ``crane.send_buffer``); 0 leaves the system's setting.
    send_lowat: int = 16384
    #: Where published configs and layers are: ``filesystem`` (``<data_dir>/blobs``) or ``s3`` (the bucket
    #: the admin side's ``storage_driver: s3`` publishes to; the ``s3_*`` keys below, see crane.s3_blobs).
    blob_storage: str = "filesystem"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = dataclasses.field(default="", repr=False)
    #: ``s3`` with ``blob_serving: redirect``: seconds a pre-signed blob URL is valid.
    s3_url_expiry: int = 300
    #: Token service realm for the ``WWW-Authenticate`` challenge; a path (``/token``) is made
    #: absolute with the request's (forwarded) scheme and host; empty: this host's ``/token``.
    token_realm: str = ""
    #: ``service`` named in that challenge, and the ``aud`` a token must carry (required with token auth).
    token_service: str = ""
    #: Off: every pull needs a token (needs ``token_public_key``).
    anonymous_pull: bool = True
    #: PEM files (comma-separated; each may hold several public keys or certificates) of the token
    #: issuer; tokens are verified with them alone. Set: token auth is on, ``/v2/`` answers 401 without a token.
    token_public_key: str = ""
    #: ``iss`` a token must carry (required with token auth).
    token_issuer: str = ""
    #: Number of proxies in front of Crane whose ``X-Forwarded-*`` headers are trusted.
    trusted_proxies: int = 0
    #: Extra gunicorn config file applied after ``crane/gunicorn.conf.py``.
    gunicorn_config: str = ""
    #: gunicorn access log to stderr (off by default: it costs throughput).
    access_log: bool = False
    log_level: str = "INFO"
    #: ``text`` or ``json`` (one JSON object per line, per request too).
    log_format: str = "text"
    #: While this file exists ``/readyz`` answers 503 (take the instance out of its load balancer); empty: none.
    drain_file: str = ""
    #: Prometheus metrics at ``/metrics``.
    metrics: bool = True
    #: CA certificate (PEM) served at ``/ca.crt``; empty: none.
    ca_certificate: str = ""
    #: Certificate chain and key (PEM) gunicorn serves TLS with; empty: plain HTTP.
    tls_certificate: str = ""
    tls_key: str = dataclasses.field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.data_dir:
            raise ConfigError("data_dir: must name the published tree directory")
        host, sep, port = self.bind.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"bind: {self.bind!r} is not HOST:PORT")
        if self.workers == 0:
            object.__setattr__(self, "workers", default_workers())
        for key in ("workers", "threads", "timeout", "manifest_cache_size", "repository_cache_mib"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key}: must be a positive number, got {getattr(self, key)}")
        if not 0 < self.poll_interval <= 3600:
            raise ConfigError(f"poll_interval: must be between 0 and 3600 seconds, got {self.poll_interval}")
        if self.send_lowat < 0:
            raise ConfigError(f"send_lowat: must be 0 or more bytes, got {self.send_lowat}")
        if self.trusted_proxies < 0:
            raise ConfigError(f"trusted_proxies: must be 0 or more, got {self.trusted_proxies}")
        if self.blob_serving not in BLOB_SERVING_MODES:
            raise ConfigError(f"blob_serving: {self.blob_serving!r} is not one of {', '.join(BLOB_SERVING_MODES)}")
        self._check_blob_storage()
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level: {self.log_level!r} is not a logging level")
        check_tls_pair(self.tls_certificate, self.tls_key)
        self._check_token_auth()

    def _check_blob_storage(self) -> None:
        if self.blob_storage not in BLOB_STORAGES:
            raise ConfigError(f"blob_storage: {self.blob_storage!r} is not one of {', '.join(BLOB_STORAGES)}")
        if self.blob_storage == "filesystem":
            if self.blob_serving in ("x-accel-redirect", "redirect") and not self.blob_url_prefix:
                raise ConfigError(f"blob_url_prefix: required when blob_serving is {self.blob_serving}")
            return
        if self.blob_serving not in ("stream", "redirect"):
            raise ConfigError(f"blob_serving: {self.blob_serving} cannot serve blobs from S3 (no file to hand "
                              "over); use redirect (a pre-signed URL) or stream")
        if not self.s3_bucket:
            raise ConfigError("s3_bucket: required when blob_storage is s3")
        if not 1 <= self.s3_url_expiry <= MAX_URL_EXPIRY:
            raise ConfigError(f"s3_url_expiry: must be between 1 and {MAX_URL_EXPIRY} seconds, "
                              f"got {self.s3_url_expiry}")
        if importlib.util.find_spec("boto3") is None:   # looked for, not imported: Crane on files never loads it
            raise ConfigError("blob_storage: s3 needs boto3: pip install 'pulp-registry[s3]'")

    @property
    def token_auth(self) -> bool:
        """Registry tokens are verified (a public key is configured): ``/v2/`` and protected names want one."""
        return bool(self.token_public_key)

    def _check_token_auth(self) -> None:
        if not self.token_public_key:
            if not self.anonymous_pull:
                raise ConfigError("token_public_key: required when anonymous_pull is off "
                                  "(without it no token can be verified and nothing could be pulled)")
            if self.token_realm:
                raise ConfigError("token_public_key: required when token_realm is set (without it no token "
                                  "from that realm can be verified and clients sent there could never pull)")
            return
        from crane.tokens import TokenKeyError, load_trusted_keys

        try:
            load_trusted_keys(self.token_public_key)
        except TokenKeyError as exc:
            raise ConfigError(f"token_public_key: {exc}") from None
        if not self.token_issuer:
            raise ConfigError("token_issuer: required when token_public_key is set (a token's iss must match it)")
        if not self.token_service:
            raise ConfigError("token_service: required when token_public_key is set (a token's aud must match it)")
        if self.blob_serving == "redirect" and self.blob_storage != "s3":
            raise ConfigError("blob_serving: redirect cannot be used with token auth (token_public_key): the "
                              "redirect URL carries no token, so it would hand protected blobs to anyone; use "
                              "stream, x-accel-redirect or x-sendfile")


def load_crane_settings(environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None,
                        on_warning: Callable[[str], None] | None = None) -> CraneSettings:
    """Settings from the ``CRANE_CONFIG`` YAML file, ``CRANE_*`` variables, then ``overrides``.

    An unknown ``CRANE_*`` variable goes to ``on_warning`` (default: logged) with the closest key's name.
    """
    return load_settings(CraneSettings, environ.get("CRANE_CONFIG"), environ, "CRANE_", overrides, on_warning)
