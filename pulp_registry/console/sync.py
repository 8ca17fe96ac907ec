"""Console pages: sync (being built)."""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render

blueprint = console_blueprint("console_sync", __name__)


@blueprint.get("/repositories/<repo_id>/sync")
def sync_page(repo_id: str) -> tuple[str, int]:
    return render("error.html", 200, title="sync", message="not built yet")
