"""Console pages: system (being built)."""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render

blueprint = console_blueprint("console_system", __name__)


@blueprint.get("/system/")
def system() -> tuple[str, int]:
    return render("error.html", 200, title="system", message="not built yet")
