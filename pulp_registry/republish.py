"""``republish --all``: bring the published tree to this version's format and publish every repository again.

The work of the ``republish`` task. The tree's layout is upgraded in place
(``publish_switch.upgrade_tree``: journal, catalog of what ``current`` links
serve, ``FORMAT`` last), so Crane serves what was published all along; then
one ordinary ``publish`` task per published repository rewrites its version in
the new format. Each is queued on its repository like any publish, so it runs
after the syncs, pushes' publishes and removals asked for before it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pulp_registry import publish_switch, tasks
from pulp_registry.db import Collections
from pulp_registry.tasks import Progress

log = logging.getLogger(__name__)

#: The lock of ``republish`` tasks: two never run at once.
PUBLISHED_TREE_RESOURCE = "published-tree"


def republished_repositories(db: Collections, root: Path) -> list[dict[str, Any]]:
    """The repositories to publish again: those published (``last_published``) or served from the tree.

    A repository never published stays unpublished; one being deleted is left to its removal.
    """
    served = {name for name, _public in publish_switch.published_repositories(root)}
    query = {"deleting": None, "$or": [{"last_published": {"$ne": None}}, {"name": {"$in": sorted(served)}}]}
    return list(db.repositories.find(query, {"_id": 1, "name": 1}).sort("name", 1))


def republish_all(services: Any, progress: Progress) -> dict[str, Any]:
    """Upgrade the tree if it is of another format, then submit a publish task per published repository."""
    root = Path(services.settings.published_dir)
    progress({"step": "upgrade", "done": 0, "total": 1})
    listed = publish_switch.upgrade_tree(root)
    progress({"step": "upgrade", "done": 1, "total": 1})
    repositories = republished_repositories(services.db, root)
    submitted = 0
    for done, repo in enumerate(repositories, 1):
        tasks.submit(services, "publish", [tasks.repository_resource(repo["_id"])], repo_id=repo["_id"])
        submitted += 1
        progress({"step": "publish_tasks", "done": done, "total": len(repositories)})
    progress({"step": "publish_tasks", "done": submitted, "total": len(repositories)})
    result = {"upgraded": listed is not None, "publish_tasks": submitted}
    if listed is not None:
        result["catalog"] = listed
    log.info("republish --all: %s", result)
    return result
