"""The floor cost of Flask on gunicorn: one fixed manifest, no protocol work.

The benchmark runs it beside Crane with the same gunicorn settings, so the
reader sees how much of Crane's time per request is Flask + gunicorn itself
and how much is Crane's own work (name and reference checks, negotiation,
headers). Run it by hand with::

    BARE_FLASK_MANIFEST=/path/to/manifest.json \\
        gunicorn -c crane/gunicorn.conf.py -w 2 -b 127.0.0.1:5001 benchmarks.bare_flask_app:app
"""
from __future__ import annotations

import hashlib
import os

from flask import Flask, Response, request

MEDIA_TYPE = os.environ.get("BARE_FLASK_MEDIA_TYPE", "application/vnd.oci.image.manifest.v1+json")
_path = os.environ.get("BARE_FLASK_MANIFEST")
MANIFEST = open(_path, "rb").read() if _path else b'{"schemaVersion":2}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()

app = Flask("bare_flask", static_folder=None)


@app.route("/v2/<path:name>/manifests/<reference>", methods=["GET", "HEAD"])
def manifest(name: str, reference: str) -> Response:
    """The same bytes and the same headers for any name and reference."""
    body = b"" if request.method == "HEAD" else MANIFEST
    response = Response(body, content_type=MEDIA_TYPE)
    response.headers["Content-Length"] = str(len(MANIFEST))
    response.headers["Docker-Content-Digest"] = DIGEST
    response.headers["Docker-Distribution-API-Version"] = "registry/2.0"
    return response


@app.route("/v2/")
def base() -> Response:
    return Response(b"{}", content_type="application/json")
