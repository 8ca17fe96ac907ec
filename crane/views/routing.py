"""URL converters: a repository name may hold ``/`` (and even a ``blobs`` component).

``repo_name`` is greedy and may span segments, ``reference`` is one segment, so
``/v2/a/blobs/b/blobs/sha256:...`` is the blob of repository ``a/blobs/b``,
as distribution reads it. Values are validated in the views, not here, so a bad
name or digest gets ``NAME_INVALID``/``DIGEST_INVALID`` rather than a bare 404.
"""
from __future__ import annotations

from werkzeug.routing import BaseConverter


class RepoNameConverter(BaseConverter):
    regex = r".+"
    part_isolating = False


class ReferenceConverter(BaseConverter):
    regex = r"[^/]+"


CONVERTERS = {"repo_name": RepoNameConverter, "reference": ReferenceConverter}
