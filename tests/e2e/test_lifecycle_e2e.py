"""An image's life as a registry administrator lives it: promote, remove, delete, clean up, audit.

Images go in with skopeo (admin port, admin credentials); the administrator
acts with ``registry-admin``; what users see is checked with skopeo against
Crane (the pull port), anonymously, as a user pulling would. Every test uses
names of its own, so the tests do not depend on each other or on their order.
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import registry_admin, run, sha256, skopeo_inspect_raw, skopeo_push, wait_until_pullable
from tests.images import build_oci_layout, layout_manifest, skopeo
from tests.servers import DevServer, poll

pytestmark = pytest.mark.e2e

#: Crane notices a new published version within its poll interval (0.5 s under ``pulp-registry dev``), so
#: something that *disappears* (a removed tag, a deleted repository) may be served a moment longer after the
#: task that published the removal has finished. Checks of removals poll for at most this long.
CRANE_CATCH_UP_S = 5.0


# --- helpers -------------------------------------------------------------------------------


def unique_layers() -> list[dict[str, bytes]]:
    """Two layers no other image has, so no other repository holds (and keeps alive) these blobs."""
    token = uuid.uuid4().hex.encode()
    return [{"etc/build-id": token + b"\n"}, {"app/payload.bin": token * 200}]


def push_new_image(server: DevServer, tmp_path: Path, name: str, *tags: str) -> str:
    """Build a fresh image, push it under every tag with skopeo; return its manifest digest."""
    layout = build_oci_layout(tmp_path, "src", layers=unique_layers())
    digest, _ = layout_manifest(layout, "src")
    for tag in tags:
        skopeo_push(server, f"oci:{layout}:src", name, tag)
    return digest


def admin(server: DevServer, *args: str) -> str:
    """``registry-admin ARGS`` as the fixture's admin user; fails the test on a non-zero exit; returns stdout."""
    return registry_admin(server, "--non-interactive", *args).stdout


def admin_json(server: DevServer, *args: str) -> Any:
    return json.loads(admin(server, *args, "--output", "json"))


def crane_digest(server: DevServer, name: str, reference: str) -> str:
    """The digest of the manifest bytes Crane serves to ``skopeo inspect --raw``, computed here."""
    return sha256(skopeo_inspect_raw(server.registry_host, name, reference))


def skopeo_failure(*args: str) -> str:
    """Run skopeo expecting it to fail; return what it printed (stderr), for the test to read."""
    proc = run("skopeo", "--insecure-policy", *args, check=False)
    assert proc.returncode != 0, f"skopeo {' '.join(args)} succeeded, expected a failure:\n{proc.stdout}"
    return proc.stderr


def crane_inspect_failure(server: DevServer, name: str, reference: str) -> str:
    separator = "@" if reference.startswith("sha256:") else ":"
    return skopeo_failure("inspect", "--raw", "--tls-verify=false",
                          f"docker://{server.registry_host}/{name}{separator}{reference}")


def crane_tags(server: DevServer, name: str) -> list[str]:
    listed = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{server.registry_host}/{name}").stdout)
    return sorted(listed["Tags"])


def eventually_gone(server: DevServer, name: str, reference: str) -> str:
    """Poll Crane until ``skopeo inspect`` of ``name:reference`` fails; return skopeo's error."""
    return poll(lambda: crane_inspect_failure(server, name, reference), CRANE_CATCH_UP_S,
                f"Crane no longer serving {name} {reference}", interval_s=0.2)


def assert_crane_tags(server: DevServer, name: str, expected: list[str]) -> None:
    """``skopeo list-tags`` on Crane lists exactly ``expected`` (waiting out Crane's poll interval)."""
    try:
        poll(lambda: crane_tags(server, name) == expected, CRANE_CATCH_UP_S, f"tags of {name}", interval_s=0.2)
    except TimeoutError:
        pass
    assert crane_tags(server, name) == expected


def skopeo_error(stderr: str, name: str) -> str:
    """skopeo's error message without its timestamp and with ``name`` blanked, to compare two errors."""
    return stderr.split("msg=", 1)[-1].replace(name, "NAME")


def content_blob_files(server: DevServer) -> set[str]:
    """Files of the content store (``<data dir>/content/blobs``): one per stored digest."""
    root = server.data_dir / "content" / "blobs"
    assert root.is_dir(), f"no content store at {root}"
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def assert_newest_first(entries: list[dict[str, Any]], time_key: str) -> None:
    # Compared as times: ISO 8601 text leaves out a fraction of zero, so it does not sort as text.
    times = [datetime.fromisoformat(entry[time_key].replace("Z", "+00:00")) for entry in entries]
    assert times == sorted(times, reverse=True), f"not newest first: {times}"


# --- scenarios -----------------------------------------------------------------------------


def test_promote_copies_tags_to_crane_without_copying_blobs(dev_server, repo_name, tmp_path):
    """``copy`` makes prod serve the very image dev has, and stores nothing twice."""
    dev, prod = f"{repo_name}-dev", f"{repo_name}-prod"
    digest_12 = push_new_image(dev_server, tmp_path, dev, "1.2")
    digest_13 = push_new_image(dev_server, tmp_path, dev, "1.3")
    push_new_image(dev_server, tmp_path, dev, "2.0")  # must not match the pattern below
    wait_until_pullable(dev_server, dev, "2.0")
    assert crane_digest(dev_server, dev, "1.2") == digest_12
    stored_before = content_blob_files(dev_server)

    printed = admin(dev_server, "copy", f"{dev}:1.2", f"{prod}:1.2")

    assert f"{dev_server.registry_host}/{prod}:1.2" in printed
    assert crane_digest(dev_server, prod, "1.2") == digest_12
    pulled = tmp_path / "pulled"
    skopeo("copy", "--src-tls-verify=false", f"docker://{dev_server.registry_host}/{prod}:1.2", f"oci:{pulled}:1.2")
    assert layout_manifest(pulled, "1.2")[0] == digest_12

    admin(dev_server, "copy", dev, prod, "--tags", "1.*")

    assert_crane_tags(dev_server, prod, ["1.2", "1.3"])
    assert crane_digest(dev_server, prod, "1.3") == digest_13
    assert content_blob_files(dev_server) == stored_before, "the copy stored blobs a second time"


def test_removed_tag_and_deleted_manifest_stop_being_served(dev_server, repo_name, tmp_path):
    """``remove NAME:TAG`` drops just that tag; ``skopeo delete`` by digest drops the image once published."""
    dev, prod = f"{repo_name}-dev", f"{repo_name}-prod"
    digest_12 = push_new_image(dev_server, tmp_path, dev, "1.2")
    push_new_image(dev_server, tmp_path, dev, "1.3")
    admin(dev_server, "copy", dev, prod, "--tags", "1.*")
    assert_crane_tags(dev_server, prod, ["1.2", "1.3"])

    admin(dev_server, "remove", f"{prod}:1.3")

    assert "manifest unknown" in eventually_gone(dev_server, prod, "1.3").lower()
    assert crane_digest(dev_server, prod, "1.2") == digest_12
    assert_crane_tags(dev_server, prod, ["1.2"])

    skopeo("delete", "--tls-verify=false", "--creds", dev_server.creds,
           f"docker://{dev_server.admin_host}/{prod}@{digest_12}")

    # The delete answers at once; the publish that makes Crane forget the image is a task.
    dev_server.wait_for_tasks()
    assert "manifest unknown" in eventually_gone(dev_server, prod, digest_12).lower()
    assert crane_digest(dev_server, dev, "1.2") == digest_12, "deleting from prod touched dev"


def test_deleted_repository_is_gone_from_crane(dev_server, repo_name, tmp_path):
    """After ``repo delete`` Crane has no such name: 404 for the admin, and to anonymous users it
    looks exactly like a name that never existed (Crane hides unknown names behind the token)."""
    doomed = f"{repo_name}-dev"
    push_new_image(dev_server, tmp_path, doomed, "1.2")
    assert crane_tags(dev_server, doomed) == ["1.2"]

    admin(dev_server, "repo", "delete", doomed, "--yes")

    def list_tags_as_admin_fails() -> str:
        return skopeo_failure("list-tags", "--tls-verify=false", "--creds", dev_server.creds,
                              f"docker://{dev_server.registry_host}/{doomed}")

    as_admin = poll(list_tags_as_admin_fails, CRANE_CATCH_UP_S, f"Crane forgetting {doomed}", interval_s=0.2)
    assert "404" in as_admin or "name unknown" in as_admin.lower(), as_admin
    anonymous = skopeo_failure("list-tags", "--tls-verify=false", f"docker://{dev_server.registry_host}/{doomed}")
    never_was = f"{repo_name}-never-pushed"
    never = skopeo_failure("list-tags", "--tls-verify=false", f"docker://{dev_server.registry_host}/{never_was}")
    assert skopeo_error(anonymous, doomed) == skopeo_error(never, never_was)
    assert doomed not in json.dumps(admin_json(dev_server, "list", "repos"))


def test_orphan_cleanup_frees_deleted_content_and_keeps_what_is_still_used(dev_server, repo_name, tmp_path):
    """What ``repo delete`` left unreferenced is listed, then freed and gone from the content store;
    an image another repository still holds (it was in the deleted repository too) keeps pulling."""
    keep, doomed = f"{repo_name}-keep", f"{repo_name}-doomed"
    kept_digest = push_new_image(dev_server, tmp_path, keep, "1")
    layout = build_oci_layout(tmp_path, "src", layers=unique_layers())
    doomed_digest, doomed_manifest = layout_manifest(layout, "src")
    skopeo_push(dev_server, f"oci:{layout}:src", doomed, "1")
    skopeo_push(dev_server, f"docker://{dev_server.admin_host}/{keep}:1", doomed, "shared",
                "--src-tls-verify=false", "--src-creds", dev_server.creds)
    admin(dev_server, "repo", "delete", doomed, "--yes")

    orphans = admin_json(dev_server, "orphans", "list", "--grace-period", "0")
    orphaned = {unit["digest"] for unit in orphans["manifests"] + orphans["blobs"]}
    assert orphans["bytes"] > 0
    doomed_content = {doomed_digest, doomed_manifest["config"]["digest"],
                      *(layer["digest"] for layer in doomed_manifest["layers"])}
    assert doomed_content <= orphaned
    assert kept_digest not in orphaned

    freed = admin(dev_server, "orphans", "cleanup", "--grace-period", "0")

    assert re.match(r"Freed \d+(\.\d)? [KMGT]?B: ", freed), freed
    [cleanup_task] = admin_json(dev_server, "tasks", "list", "--type", "orphan_cleanup", "--limit", "1")
    assert cleanup_task["state"] == "finished"
    assert cleanup_task["result"]["bytes_freed"] == orphans["bytes"]
    after = admin_json(dev_server, "orphans", "list", "--grace-period", "0")
    assert after["count"] == 0 and after["bytes"] == 0 and not after["blobs"] and not after["manifests"]
    stored = content_blob_files(dev_server)
    assert not any(digest.removeprefix("sha256:") in path for digest in doomed_content for path in stored)

    assert crane_digest(dev_server, keep, "1") == kept_digest
    pulled = tmp_path / "kept"
    skopeo("copy", "--src-tls-verify=false", f"docker://{dev_server.registry_host}/{keep}:1", f"oci:{pulled}:1")
    assert layout_manifest(pulled, "1")[0] == kept_digest


def test_tasks_and_history_tell_what_was_done_and_by_whom(dev_server, repo_name, tmp_path):
    """``tasks list`` and ``repo history`` are the audit trail: newest first, finished, with the login."""
    dev, prod = f"{repo_name}-dev", f"{repo_name}-prod"
    push_new_image(dev_server, tmp_path, dev, "1.2", "1.3")
    admin(dev_server, "copy", dev, prod, "--tags", "1.*")
    admin(dev_server, "remove", f"{prod}:1.3")

    tasks = admin_json(dev_server, "tasks", "list", "--repo", prod)
    assert {"copy", "publish"} <= {task["task_type"] for task in tasks}
    assert all(task["state"] == "finished" for task in tasks), tasks
    assert all(task["user"] == dev_server.admin_username for task in tasks)
    assert_newest_first(tasks, "created")
    assert tasks[-1]["task_type"] == "copy", "the copy came first"

    history = admin_json(dev_server, "repo", "history", prod)
    actions = [event["action"] for event in history]
    assert "copy" in actions and "remove" in actions
    assert actions.index("remove") < actions.index("copy"), f"not newest first: {actions}"
    assert_newest_first(history, "time")
    for event in history:
        if event["action"] in ("copy", "remove"):
            assert event["user"] == dev_server.admin_username, event
    removal = history[actions.index("remove")]
    assert removal["details"]["tags"] == ["1.3"]
    copy = history[actions.index("copy")]
    assert copy["details"]["source"] == dev and sorted(copy["details"]["tags"]) == ["1.2", "1.3"]
