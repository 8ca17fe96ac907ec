"""``verify`` as a function, and the three commands through click (one-line errors, exit statuses)."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pulp_registry import maintenance
from pulp_registry.cli import ServerContext, cli
from pulp_registry.verify import verify_content
from tests.backup.conftest import empty_install

#: The commands refuse an in-memory database; the tests hand them services of their own instead.
ENVIRON = {"PULP_REGISTRY_MONGO_URL": "mongodb://127.0.0.1:1/", "PULP_REGISTRY_BROKER_URL": "redis://127.0.0.1:1/0"}


def invoke(services, *args: str):
    context = ServerContext(environ=dict(ENVIRON), build_services=lambda _settings: services)
    return CliRunner().invoke(cli, list(args), obj=context)


def a_layer_digest(filled) -> str:
    import json

    raw = next(iter(filled.manifests.values()))
    return json.loads(raw)["layers"][-1]["digest"]


def test_verify_finds_nothing_wrong_in_an_intact_registry(services, filled):
    result = verify_content(services)

    assert result.ok
    assert result.manifests == 3 and result.blobs == 4  # one config, the shared layer, two app layers
    assert result.summary().endswith("no problems")


def test_verify_names_a_damaged_file_missing_file_and_wrong_size(services, filled):
    layer = a_layer_digest(filled)
    manifest = next(iter(filled.manifests))
    gone = services.db.blobs.find_one({"_id": {"$nin": [layer]}})["_id"]
    path = services.storage.local_path(layer)
    path.write_bytes(b"X" + path.read_bytes()[1:])
    services.storage.delete(gone)
    services.storage.local_path(manifest).write_bytes(filled.manifests[manifest] + b"\n")

    problems = {problem.digest: str(problem) for problem in verify_content(services).problems}

    assert problems[layer].startswith(f"{layer} (blob): damaged: its bytes have digest sha256:")
    assert problems[gone].startswith(f"{gone} (blob): missing from content storage")
    assert "bytes in content storage, the database says" in problems[manifest]
    assert len(problems) == 3


def test_verify_quick_checks_sizes_only(services, filled):
    layer = a_layer_digest(filled)
    path = services.storage.local_path(layer)
    path.write_bytes(b"X" + path.read_bytes()[1:])

    assert verify_content(services, quick=True).ok
    assert not verify_content(services).ok


def test_verify_command_exits_1_naming_the_digest_and_0_when_intact(services, filled):
    intact = invoke(services, "verify")
    assert intact.exit_code == 0, intact.stdout + intact.stderr
    assert intact.stdout.startswith("verify: checked 4 blobs and 3 manifests")

    layer = a_layer_digest(filled)
    path = services.storage.local_path(layer)
    path.write_bytes(b"X" + path.read_bytes()[1:])
    damaged = invoke(services, "verify")

    assert damaged.exit_code == 1
    assert damaged.stdout.splitlines()[0].startswith(f"{layer} (blob): damaged")
    assert damaged.stdout.splitlines()[-1].endswith("1 problem")


def test_backup_and_restore_commands_print_progress_and_what_they_did(services, filled, tmp_path):
    backed = invoke(services, "backup", str(tmp_path / "bk"))
    assert backed.exit_code == 0, backed.stdout + backed.stderr
    lines = backed.stdout.splitlines()
    assert lines[0] == "read-only mode on (reason: backup)"
    assert "database: repositories: 2 documents" in lines
    assert lines[-2] == "read-only mode off"
    assert lines[-1].startswith("backup written to ") and "2 repositories, 3 tags" in lines[-1]

    target = empty_install(tmp_path / "target")
    restored = invoke(target, "restore", str(tmp_path / "bk"))
    assert restored.exit_code == 0, restored.stdout + restored.stderr
    assert restored.stdout.splitlines()[-1].startswith(f"restored from {tmp_path / 'bk'}: 2 repositories, 3 tags")
    assert "published 2 repositories" in restored.stdout
    assert invoke(target, "verify").exit_code == 0


def test_commands_fail_with_one_line(services, filled, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")

    refused = invoke(services, "backup", str(tmp_path / "full"))
    not_a_backup = invoke(services, "restore", str(tmp_path / "full"))
    in_memory = CliRunner().invoke(cli, ["verify"], obj=ServerContext(environ={
        "PULP_REGISTRY_MONGO_URL": "mongomock://", "PULP_REGISTRY_BROKER_URL": "memory://"}))

    for result in (refused, not_a_backup, in_memory):
        assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert refused.stderr.startswith(f"pulp-registry: backup: {tmp_path / 'full'} is not empty")
    assert not_a_backup.stderr.startswith("pulp-registry: restore: ") and "has no backup.json" in not_a_backup.stderr
    assert "in-memory database" in in_memory.stderr
    assert maintenance.read_only_state(services.db) is None


def test_restore_command_refuses_a_target_that_is_not_empty(services, filled, tmp_path):
    assert invoke(services, "backup", str(tmp_path / "bk")).exit_code == 0

    refused = invoke(services, "restore", str(tmp_path / "bk"))

    assert refused.exit_code == 1
    assert refused.stderr.startswith("pulp-registry: restore: the target is not empty (2 repositories")
    assert Path(tmp_path / "bk" / "backup.json").exists()


def test_backup_command_gives_up_on_tasks_that_do_not_end_with_one_line(services, filled, tmp_path):
    from pulp_registry import tasks

    task = tasks.create_task(services.db, "publish", ["repository:base"], {"repo_id": "base"})

    result = invoke(services, "backup", "--timeout", "0.2", str(tmp_path / "bk"))

    assert result.exit_code == 1
    assert result.stderr == (f"pulp-registry: backup: tasks still waiting or running after 0.2 s: publish {task['_id']} "
                             f"(waiting); no backup was made (try again, or give a longer --timeout)\n")
    assert maintenance.read_only_state(services.db) is None
    assert not (tmp_path / "bk" / "backup.json").exists()
