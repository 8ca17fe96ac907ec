"""Mirroring an upstream registry as an administrator does it, checked with skopeo as a user pulls.

The upstream is Debian's docker-registry on 127.0.0.1 (the ``upstream`` fixture),
filled with skopeo and with a multi-platform index; the administrator sets a
feed and syncs with ``registry-admin`` against ``pulp-registry dev`` (its
worker runs the sync); every synced image is then read back from Crane with
skopeo, and its digests compared with the upstream's.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import registry_admin, run, sha256, skopeo_inspect_raw
from tests.images import build_oci_layout, layout_manifest, skopeo
from tests.servers import DevServer

pytestmark = pytest.mark.e2e


def upstream_digest(upstream, name: str, reference: str) -> str:
    return sha256(skopeo_inspect_raw(upstream.host, name, reference))


def crane_digest(server: DevServer, name: str, reference: str) -> str:
    return sha256(skopeo_inspect_raw(server.registry_host, name, reference))


def test_a_mirror_synced_with_registry_admin_serves_the_upstream_digests(dev_server, upstream, repo_name,
                                                                          tmp_path: Path):
    layout = build_oci_layout(tmp_path, "src", layers=[{"app/hello.txt": repo_name.encode()}])
    pushed, _ = layout_manifest(layout, "src")
    for tag in ("1.0", "1.1", "2.0"):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:src", f"docker://{upstream.host}/team/app:{tag}")
    index_digest, children = upstream.push_index("team/app", "multi", ["linux/amd64", "linux/arm64/v8"])

    registry_admin(dev_server, "--non-interactive", "repo", "create", repo_name, "--feed", upstream.url,
                   "--upstream-name", "team/app", "--include-tags", "1.*", "--include-tags", "multi",
                   "--platform", "linux/arm64")
    dry = registry_admin(dev_server, "--non-interactive", "repo", "sync", repo_name, "--dry-run").stdout
    assert "add 3: 1.0, 1.1, multi" in dry
    synced = registry_admin(dev_server, "--non-interactive", "repo", "sync", repo_name).stdout
    assert "added 3: 1.0, 1.1, multi" in synced

    for tag in ("1.0", "1.1"):
        assert crane_digest(dev_server, repo_name, tag) == upstream_digest(upstream, "team/app", tag) == pushed
    assert crane_digest(dev_server, repo_name, "multi") == index_digest   # the index, byte for byte
    arm = children["linux/arm64/v8"]
    assert crane_digest(dev_server, repo_name, arm) == arm
    missing = run("skopeo", "inspect", "--raw", "--tls-verify=false",
                  f"docker://{dev_server.registry_host}/{repo_name}@{children['linux/amd64']}", check=False)
    assert missing.returncode != 0 and "manifest unknown" in missing.stderr.lower()   # the platform left out
    tags = run("skopeo", "list-tags", "--tls-verify=false", f"docker://{dev_server.registry_host}/{repo_name}").stdout
    assert '"2.0"' not in tags and '"1.0"' in tags

    again = registry_admin(dev_server, "--non-interactive", "repo", "sync", repo_name).stdout
    assert "added 0" in again and "0 blob(s)" in again   # nothing new upstream: nothing fetched
