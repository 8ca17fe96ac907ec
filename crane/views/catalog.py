"""``GET /v2/_catalog``: the repositories the caller may pull, with ``n``/``last`` and ``Link``."""
from __future__ import annotations

from flask import Blueprint, Response, request

from crane.views.access import catalog_page
from crane.views.base import json_response
from pulp_registry.oci import next_link, page_args

blueprint = Blueprint("catalog", __name__)


@blueprint.route("/v2/_catalog", methods=["GET", "HEAD"])
def catalog() -> Response:
    n, last = page_args(request.args)
    page, more = catalog_page(n, last)   # 401 when the caller may list nothing
    headers = {"Link": next_link(request.path, page, n)} if more and n else None
    return json_response({"repositories": page}, headers=headers)
