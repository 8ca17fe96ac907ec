"""``pulp-registry republish --all`` turns a format-1 tree into format 2 and publishes every repository again."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from pulp_registry import published_format as fmt, tasks
from pulp_registry.cli import ServerContext, cli
from pulp_registry.db import utcnow
from pulp_registry.publish import publish_repository
from pulp_registry.publish_switch import upgrade_tree
from tests.publish.sample_content import make_repository, push_image
from tests.republish.format1_tree import write_format1_tree

#: The command refuses an in-memory database; the tests hand it services of their own instead.
ENVIRON = {"PULP_REGISTRY_MONGO_URL": "mongodb://127.0.0.1:1/", "PULP_REGISTRY_BROKER_URL": "redis://127.0.0.1:1/0"}


def invoke(services: Any, *args: str):
    context = ServerContext(environ=dict(ENVIRON), build_services=lambda _settings: services)
    return CliRunner().invoke(cli, list(args), obj=context)


def journal_lines(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for segment in sorted((root / "journal").glob("*.log"))
            for line in segment.read_bytes().splitlines()]


def live_document(root: Path, name: str) -> dict[str, Any]:
    return json.loads((fmt.repository_dir(root, name) / "current" / "repository.json").read_text())


def published_before(services: Any, name: str, protected: bool, layer: bytes) -> dict[str, Any]:
    """A repository in the database that an earlier version published (``last_published``)."""
    repo = make_repository(services, name, protected=protected)
    push_image(services, repo, "latest", [layer])
    services.db.repositories.update_one({"_id": repo["_id"]}, {"$set": {"last_published": utcnow()}})
    return repo


def test_republish_all_upgrades_a_format_1_tree_and_publishes_every_published_repository(services):
    root = Path(services.settings.published_dir)
    write_format1_tree(root, {"old/app": False, "secret/app": True})
    published_before(services, "old/app", False, b"old layer")
    published_before(services, "secret/app", True, b"secret layer")
    draft = make_repository(services, "draft/app")

    result = invoke(services, "republish", "--all")

    assert result.exit_code == 0, result.output
    task_id = result.output.split()[-1]
    assert result.output == f"republish task {task_id}\n"
    task = tasks.get_task(services.db, task_id)
    assert task["state"] == "finished", task
    assert task["result"] == {"upgraded": True, "catalog": 2, "publish_tasks": 2}
    spawned = tasks.spawned_tasks(services.db, task_id)
    assert [(child["task_type"], child["state"]) for child in spawned] == [("publish", "finished")] * 2

    assert (root / "FORMAT").read_text() == "pulp-registry-published 2\n"
    assert (root / "catalog" / "all").read_text() == "old/app\nsecret/app\n"
    assert (root / "catalog" / "public").read_text() == "old/app\n"
    lines = journal_lines(root)
    assert sorted((line["name"], line["protected"], line["catalog"]) for line in lines) == [
        ("old/app", False, False), ("secret/app", True, False)]
    for line in lines:
        document = live_document(root, line["name"])
        assert document["format"] == 2 and set(document["tags"]) == {"latest"}
        assert (fmt.repository_dir(root, line["name"]) / "current").resolve().name == line["version"]
    assert not fmt.repository_dir(root, draft["name"]).exists()


def test_the_upgrade_catalogs_what_the_tree_serves_and_then_publishes_are_accepted(services):
    root = Path(services.settings.published_dir)
    write_format1_tree(root, {"b/served": True, "a/served": False, "c/gone": False})
    (fmt.repository_dir(root, "c/gone") / "current").unlink()   # removed halfway: no current version

    assert upgrade_tree(root) == 2
    assert upgrade_tree(root) is None   # format 2 already: nothing to do

    assert (root / "catalog" / "all").read_text() == "a/served\nb/served\n"
    assert (root / "catalog" / "public").read_text() == "a/served\n"
    assert journal_lines(root) == []
    assert live_document(root, "a/served")["format"] == 1   # served as it is until republished
    repo = make_repository(services, "new/app")
    version = publish_repository(services, repo["_id"])["version"]
    assert journal_lines(root) == [{"name": "new/app", "version": version, "protected": False, "catalog": True}]
    assert (root / "catalog" / "all").read_text() == "a/served\nb/served\nnew/app\n"


def test_republish_all_with_wait_reports_the_outcome(services):
    root = Path(services.settings.published_dir)
    write_format1_tree(root, {})
    published_before(services, "waited/app", False, b"waited layer")

    result = invoke(services, "republish", "--all", "--wait")

    assert result.exit_code == 0, result.output
    assert "finished: 1/1 publish tasks ended" in result.output
    assert result.output.endswith("republished: {'upgraded': True, 'publish_tasks': 1, 'catalog': 0}\n")
    assert (root / "catalog" / "all").read_text() == "waited/app\n"


def test_republish_on_a_format_2_tree_only_publishes(services):
    repo = published_before(services, "current/app", False, b"layer")
    publish_repository(services, repo["_id"])
    tree_id = (Path(services.settings.published_dir) / "journal" / "HEAD").read_text()

    result = invoke(services, "republish", "--all")

    task = tasks.get_task(services.db, result.output.split()[-1])
    assert task["result"] == {"upgraded": False, "publish_tasks": 1}
    assert (Path(services.settings.published_dir) / "journal" / "HEAD").read_text() == tree_id


def test_republish_without_all_is_one_line_and_submits_nothing(services):
    result = invoke(services, "republish")

    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert result.output.startswith("pulp-registry: republish: give --all")
    assert tasks.list_tasks(services.db, types=["republish"]) == []


def test_republish_is_refused_in_read_only_mode(services):
    from pulp_registry import maintenance

    maintenance.enter_read_only(services.db, "storage migration")
    result = invoke(services, "republish", "--all")

    assert result.exit_code == 1
    assert "storage migration" in result.output


def test_crane_serves_an_upgraded_tree_before_its_versions_are_republished(services):
    from tests.crane.conftest import CraneUnderTest

    root = Path(services.settings.published_dir)
    write_format1_tree(root, {"old/app": False, "secret/app": True})
    upgrade_tree(root)

    crane = CraneUnderTest(root)
    assert json.loads(crane.get("/v2/_catalog").data) == {"repositories": ["old/app"]}
    assert json.loads(crane.get("/v2/old/app/tags/list").data) == {"name": "old/app", "tags": []}
    assert crane.get("/v2/secret/app/tags/list").status_code == 401
