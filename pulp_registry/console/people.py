"""Console pages: people (being built)."""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render

blueprint = console_blueprint("console_people", __name__)


@blueprint.get("/people/")
def overview() -> tuple[str, int]:
    return render("error.html", 200, title="people", message="not built yet")


@blueprint.get("/repositories/<repo_id>/access")
def repository_access(repo_id: str) -> tuple[str, int]:
    return render("error.html", 200, title="people", message="not built yet")
