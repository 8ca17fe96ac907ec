"""Console pages: tasks (being built)."""
from __future__ import annotations

from pulp_registry.console.pages import console_blueprint, render

blueprint = console_blueprint("console_tasks", __name__)


@blueprint.get("/tasks/")
def task_list() -> tuple[str, int]:
    return render("error.html", 200, title="tasks", message="not built yet")


@blueprint.get("/tasks/<task_id>/")
def task(task_id: str) -> tuple[str, int]:
    return render("error.html", 200, title="tasks", message="not built yet")
