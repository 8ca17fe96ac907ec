"""``registry-admin orphans ...``: what nothing references, what a clean-up would free, and why."""
from __future__ import annotations

from tests.cli.conftest import json_output, one_error_line
from tests.images import build_oci_layout, layout_manifest


def orphaned_image(run_cli, tmp_path) -> tuple[str, dict]:
    """An image pushed as team/app:old, then removed by digest: its manifest and blobs are orphans."""
    layout = build_oci_layout(tmp_path, "v1", layers=[{"orphan.txt": b"nobody needs me " * 50}])
    assert run_cli("push", "team/app:old", "--archive", str(layout)).exit_code == 0
    digest, manifest = layout_manifest(layout, "v1")
    removed = run_cli("remove", f"team/app@{digest}", "--yes")
    assert removed.exit_code == 0, removed.output
    return digest, manifest


def test_orphans_list_and_dry_run_show_what_would_be_freed(run_cli, server, tmp_path):
    digest, manifest = orphaned_image(run_cli, tmp_path)
    listing = json_output(run_cli("orphans", "list", "--grace-period", "0", "-o", "json"))
    assert digest in {item["digest"] for item in listing["manifests"]}
    assert manifest["layers"][0]["digest"] in {item["digest"] for item in listing["blobs"]}

    table = run_cli("orphans", "list", "--grace-period", "0")
    assert table.exit_code == 0, table.output
    assert digest in table.stdout and "orphan(s)" in table.stdout

    dry = run_cli("orphans", "cleanup", "--grace-period", "0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith("Would free ")
    assert json_output(run_cli("orphans", "list", "--grace-period", "0", "-o", "json"))["count"] == listing["count"]


def test_orphans_cleanup_frees_bytes_and_says_how_many(run_cli, server, tmp_path):
    digest, _ = orphaned_image(run_cli, tmp_path)
    result = run_cli("orphans", "cleanup", "--grace-period", "0")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Freed ") and "blob(s)" in result.stdout
    listing = json_output(run_cli("orphans", "list", "--grace-period", "0", "-o", "json"))
    assert digest not in {item["digest"] for item in listing["manifests"]}


def test_orphans_cleanup_no_wait_names_the_task(run_cli, server, tmp_path):
    result = run_cli("orphans", "cleanup", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "registry-admin tasks wait" in result.stderr


def test_orphans_explain_says_who_holds_a_blob(run_cli, server, tmp_path):
    layout = build_oci_layout(tmp_path, "v1")
    assert run_cli("push", "team/app:v1", "--archive", str(layout)).exit_code == 0
    _, manifest = layout_manifest(layout, "v1")
    result = run_cli("orphans", "explain", manifest["layers"][0]["digest"])
    assert result.exit_code == 0, result.output
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in result.stdout.splitlines()}
    assert fields["Orphan"] == "no" and "team/app (v1)" in fields["Held by"]
    assert "invalid digest" in one_error_line(run_cli("orphans", "explain", "sha256:123"))
