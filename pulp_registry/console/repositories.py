"""Console pages: repositories (being built)."""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render

blueprint = console_blueprint("console_repositories", __name__)


@blueprint.get("/repositories/")
def repository_list() -> tuple[str, int]:
    return render("error.html", 200, title="repositories", message="not built yet")


@blueprint.get("/repositories/<repo_id>/")
def repository(repo_id: str) -> tuple[str, int]:
    return render("error.html", 200, title="repositories", message="not built yet")


@blueprint.get("/repositories/<repo_id>/manifests/<digest>")
def manifest(repo_id: str, digest: str) -> tuple[str, int]:
    return render("error.html", 200, title="repositories", message="not built yet")


@blueprint.get("/repositories/<repo_id>/history")
def history(repo_id: str) -> tuple[str, int]:
    return render("error.html", 200, title="repositories", message="not built yet")
