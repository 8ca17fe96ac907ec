"""``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination and ``Link``."""
from __future__ import annotations

from flask import Blueprint, Response, request

from crane.listing import paginate
from crane.published import PublishedRepository
from crane.views.access import pull_access
from crane.views.base import json_response
from pulp_registry.oci import next_link, page_args

blueprint = Blueprint("tags", __name__)


@blueprint.route("/v2/<repo_name:name>/tags/list", methods=["GET", "HEAD"])
@pull_access
def list_tags(repository: PublishedRepository) -> Response:
    n, last = page_args(request.args)
    page, more = paginate(repository.sorted_tags, n, last)
    headers = {"Link": next_link(request.path, page, n)} if more and n else None
    return json_response({"name": repository.name, "tags": page}, headers=headers)
