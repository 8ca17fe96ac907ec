"""``/ca.crt``: the CA certificate clients add to their trust store, served without login by both sides.

Pure (Flask and the standard library) so Crane may import it. The file is read
on each request: it is small, rarely asked for, and a renewed CA is served at
once without a restart.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Response

log = logging.getLogger(__name__)

CA_PATH = "/ca.crt"
#: What browsers and ``curl -O`` expect for a CA to install (RFC 2585 names application/pkix-cert for DER).
CA_CONTENT_TYPE = "application/x-x509-ca-cert"
#: Where ``pulp-registry certs init`` and ``pulp-registry dev`` write, below the data dir.
CERTS_DIR = "certs"


def default_ca_certificate(data_dir: str | Path) -> Path:
    return Path(data_dir) / CERTS_DIR / "ca.crt"


def admin_ca_certificate(ca_certificate: str, data_dir: str | Path) -> Path | None:
    """The admin side's CA file: the ``ca_certificate`` setting, else ``<data_dir>/certs/ca.crt`` if it exists."""
    if ca_certificate:
        return Path(ca_certificate)
    default = default_ca_certificate(data_dir)
    return default if default.is_file() else None


def ca_certificate_response(path: str | Path | None) -> Response | None:
    """The PEM file as a download, or None when no CA is configured or the file cannot be read."""
    if not path:
        return None
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        log.warning("cannot serve %s: %s", path, exc.strerror or exc)
        return None
    response = Response(pem, mimetype=CA_CONTENT_TYPE)
    response.headers["Content-Disposition"] = 'attachment; filename="ca.crt"'
    response.headers["Cache-Control"] = "no-cache"
    return response
