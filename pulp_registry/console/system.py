"""Console page: the system's health, the read-only state, the CA download and how to log in, push and pull.

Any logged-in user may see it, as any logged-in user may read ``GET /pulp/api/v2/status/``.
"""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render
from pulp_registry.console.system_status import system_page
from pulp_registry.services import current_services

blueprint = console_blueprint("console_system", __name__)


@blueprint.get("/system/")
def system() -> tuple[str, int]:
    return render("system.html", section="system", title="System", page=system_page(current_services()))
