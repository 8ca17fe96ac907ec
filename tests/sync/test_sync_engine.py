"""Sync from real upstream registries (docker-registry): what the repository holds afterwards.

No HTTP is mocked: the upstreams are the fixtures of ``tests/sync/conftest.py``.
"""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from werkzeug.serving import make_server

from pulp_registry import content, feeds, oci, repositories
from pulp_registry.config import Settings
from pulp_registry.promotion import copy_images
from pulp_registry.services import build_services
from pulp_registry.sync import SyncError, UpstreamError, sync_repository
from pulp_registry.sync.upstream import UpstreamClient
from pulp_registry.tasks import TaskStopped
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.lifecycle.helpers import crane_on, held, run_waiting_tasks
from tests.sync.upstreams import sha256_digest


def make_repository(services: Any, name: str, source: Any, upstream_name: str = "team/app",
                    **settings: Any) -> dict[str, Any]:
    """A repository whose feed is ``source`` (an upstream fixture or a proxy in front of one)."""
    body: dict[str, Any] = {"url": source.url, "upstream_name": upstream_name, **settings}
    if getattr(source, "ca_bundle", None):
        body["ca_bundle"] = source.ca_bundle
    if getattr(source, "username", None) and "credentials" not in body:
        body["credentials"] = {"username": source.username, "password": source.password}
    return repositories.create_repository(services.db, name.replace("/", "-") + "-mirror", feed=body)


class Reports(list):
    """The progress reports of one sync; ``stop_after_blobs`` raises ``TaskStopped`` as a cancel would."""

    def __init__(self, stop_after_blobs: int | None = None) -> None:
        super().__init__()
        self.stop_after_blobs = stop_after_blobs

    def __call__(self, report: dict[str, Any]) -> None:
        self.append(dict(report))
        if (self.stop_after_blobs is not None and report["step"] == "blobs"
                and report["done"] >= self.stop_after_blobs):
            raise TaskStopped("canceled")


def sync(services: Any, repo: dict[str, Any], progress: Any = None, **options: Any) -> dict[str, Any]:
    return sync_repository(services, progress if progress is not None else Reports(), repo_id=repo["_id"], **options)


def set_feed(services: Any, repo: dict[str, Any], **changes: Any) -> None:
    feeds.set_feed(services.db, repo["_id"], changes)


def upstream_tags(source: Any, name: str = "team/app") -> dict[str, str]:
    """Tag -> manifest digest as the upstream serves them."""
    client = UpstreamClient(feeds.Feed(url=source.url, upstream_name=name, ca_bundle=source.ca_bundle,
                                       username=source.username, password=source.password))
    with client:
        return {tag: client.get_manifest(tag).digest for tag in client.list_tags()}


def blob_requests(proxy: Any) -> list[str]:
    return [path for method, path, _status in proxy.log if "/blobs/" in path and method == "GET"]


# --- the essential path: plain HTTP, anonymous ----------------------------------------------------


def test_sync_brings_every_tag_manifest_and_blob_and_crane_serves_them(services, upstream):
    v1 = upstream.push_image("team/app", "v1", [b"layer one", b"layer two"])
    v2 = upstream.push_image("team/app", "v2", [b"layer one", b"layer three"])
    repo = make_repository(services, "team/app", upstream)
    reports = Reports()

    result = sync(services, repo, reports)

    assert sorted(result["added"]) == ["v1", "v2"] and result["updated"] == result["removed"] == []
    assert result["manifests"] == 2 and result["blobs"] == 5   # 3 layers, 2 configs
    assert held(services, repo["_id"])["tags"] == upstream_tags(upstream) == {"v1": v1, "v2": v2}
    for layer in (b"layer one", b"layer two", b"layer three"):
        assert services.storage.read(sha256_digest(layer)) == layer
        assert content.repo_blob(services.db, repo["_id"], sha256_digest(layer)) is not None
    assert {"step": "blobs", "done": 5, "total": 5} in reports
    assert reports[-1]["step"] == "manifests"
    assert result["publish_task"] is not None
    crane = crane_on(services)
    response = crane.get(f"/v2/{repo['name']}/manifests/v2")
    assert response.status_code == 200 and sha256_digest(response.data) == v2
    assert crane.get(f"/v2/{repo['name']}/blobs/{sha256_digest(b'layer three')}").data == b"layer three"


def test_second_sync_fetches_no_blob_and_no_manifest(services, upstream, flaky_proxy):
    upstream.push_image("team/app", "v1", [b"one"])
    upstream.push_index("team/app", "multi")
    proxy = flaky_proxy(upstream)
    repo = make_repository(services, "team/app", proxy)
    first = sync(services, repo)
    proxy.log.clear()

    again = sync(services, repo)

    assert first["blobs"] > 0 and again["blobs"] == again["bytes"] == again["manifests"] == 0
    assert again["added"] == again["updated"] == [] and again["publish_task"] is None
    assert blob_requests(proxy) == []
    by_digest = [path for method, path, _ in proxy.log if "/manifests/sha256:" in path]
    assert by_digest == []   # children are read from content storage, only tags are asked


def test_include_and_exclude_globs_choose_the_tags(services, upstream):
    for tag in ("1.0", "1.1", "1.1-rc1", "2.0", "latest"):
        upstream.push_image("team/app", tag, [tag.encode()])
    repo = make_repository(services, "team/app", upstream, include_tags=["1.*"], exclude_tags=["*-rc*"])

    result = sync(services, repo)

    assert sorted(result["added"]) == ["1.0", "1.1"]
    assert sorted(held(services, repo["_id"])["tags"]) == ["1.0", "1.1"]


def test_regex_filters_match_the_whole_tag(services, upstream):
    for tag in ("v1", "v10", "v1-debug", "latest"):
        upstream.push_image("team/app", tag, [tag.encode()])
    repo = make_repository(services, "team/app", upstream, include_tags=[r"v\d+"], tag_match="regex")

    assert sorted(sync(services, repo)["added"]) == ["v1", "v10"]


def test_explicit_tags_and_digests_without_walking_the_tag_list(services, upstream, flaky_proxy):
    upstream.push_image("team/app", "v1", [b"one"])
    upstream.push_image("team/app", "v2", [b"two"])
    untagged = upstream.push_image("team/app", None, [b"untagged"])
    proxy = flaky_proxy(upstream)
    repo = make_repository(services, "team/app", proxy, tags=["v2", "gone"], digests=[untagged])

    result = sync(services, repo)

    assert result["added"] == ["v2"]
    assert result["skipped"] == [{"tag": "gone", "reason": "not found upstream"}]
    holding = held(services, repo["_id"])
    assert list(holding["tags"]) == ["v2"] and untagged in holding["manifests"]
    assert not any("/tags/list" in path for _, path, _ in proxy.log)


def test_platform_filter_keeps_the_index_bytes_and_only_the_chosen_children(services, upstream):
    index_digest, children = upstream.push_index("team/app", "multi", ["linux/amd64", "linux/arm64/v8",
                                                                       "linux/s390x"])
    repo = make_repository(services, "team/app", upstream, platforms=["linux/arm64"])

    result = sync(services, repo)

    holding = held(services, repo["_id"])
    assert holding["tags"] == {"multi": index_digest}
    assert holding["manifests"] == {index_digest, children["linux/arm64/v8"]}
    assert oci.compute_digest(services.storage.read(index_digest)) == index_digest
    assert not services.storage.exists(children["linux/amd64"])
    assert result["manifests"] == 2
    crane = crane_on(services)
    assert sha256_digest(crane.get(f"/v2/{repo['name']}/manifests/multi").data) == index_digest
    assert crane.get(f"/v2/{repo['name']}/manifests/{children['linux/arm64/v8']}").status_code == 200
    assert crane.get(f"/v2/{repo['name']}/manifests/{children['linux/amd64']}").status_code == 404

    set_feed(services, repo, platforms=[])   # all platforms now: the list becomes whole
    widened = sync(services, repo)
    assert widened["manifests"] == 3   # two more children, and the list again (no longer partial)
    assert held(services, repo["_id"])["manifests"] == {index_digest, *children.values()}
    association = services.db.repo_manifests.find_one({"repo_id": repo["_id"], "digest": index_digest})
    assert content.PARTIAL not in association


def test_a_list_synced_for_some_platforms_can_be_promoted_as_it_is(services, upstream):
    index_digest, children = upstream.push_index("team/app", "multi", ["linux/amd64", "linux/arm64/v8"])
    repo = make_repository(services, "team/app", upstream, platforms=["linux/amd64"])
    sync(services, repo)
    target = repositories.create_repository(services.db, "prod/app")

    copy_images(services, Reports(), source_repo_id=repo["_id"], target_repo_id=target["_id"], tags=["multi"])

    holding = held(services, target["_id"])
    assert holding["tags"] == {"multi": index_digest}
    assert holding["manifests"] == {index_digest, children["linux/amd64"]}
    association = services.db.repo_manifests.find_one({"repo_id": target["_id"], "digest": index_digest})
    assert association[content.PARTIAL] is True
    for task in run_waiting_tasks(services):
        assert task["state"] == "finished", task["error"]
    crane = crane_on(services)
    assert sha256_digest(crane.get("/v2/prod/app/manifests/multi").data) == index_digest
    assert crane.get(f"/v2/prod/app/manifests/{children['linux/arm64/v8']}").status_code == 404


def test_additive_keeps_tags_gone_upstream_and_mirror_removes_them(services, upstream):
    upstream.push_image("team/app", "keep", [b"keep"])
    upstream.push_image("team/app", "old", [b"old"])
    repo = make_repository(services, "team/app", upstream)
    sync(services, repo)
    upstream.delete_tag("team/app", "old")
    new = upstream.push_image("team/app", "keep", [b"keep, newer"])

    additive = sync(services, repo)
    assert additive["updated"] == ["keep"] and additive["removed"] == []
    assert sorted(held(services, repo["_id"])["tags"]) == ["keep", "old"]

    set_feed(services, repo, mode="mirror")
    mirror = sync(services, repo)
    assert mirror["removed"] == ["old"]
    assert held(services, repo["_id"])["tags"] == {"keep": new}


def test_cosign_tags_come_along_with_the_image_they_sign(services, upstream):
    subject = upstream.push_image("team/app", "v1", [b"signed image"])
    signature = upstream.push_cosign_tag("team/app", subject)
    upstream.push_cosign_tag("team/app", upstream.push_image("team/app", "other", [b"not synced"]))
    repo = make_repository(services, "team/app", upstream, include_tags=["v*"])

    result = sync(services, repo)

    cosign = subject.replace(":", "-") + ".sig"
    assert held(services, repo["_id"])["tags"] == {"v1": subject, cosign: signature}
    assert sorted(result["added"]) == sorted(["v1", cosign])


def test_cosign_tags_are_found_without_the_tag_list_for_explicit_tags(services, upstream):
    subject = upstream.push_image("team/app", "v1", [b"signed image"])
    signature = upstream.push_cosign_tag("team/app", subject)
    repo = make_repository(services, "team/app", upstream, tags=["v1"])

    sync(services, repo)

    assert held(services, repo["_id"])["tags"] == {"v1": subject, subject.replace(":", "-") + ".sig": signature}


def test_referrers_off_leaves_them_upstream(services, upstream):
    subject = upstream.push_image("team/app", "v1", [b"signed image"])
    upstream.push_cosign_tag("team/app", subject)
    repo = make_repository(services, "team/app", upstream, referrers=False)

    assert sync(services, repo)["added"] == ["v1"]
    assert list(held(services, repo["_id"])["tags"]) == ["v1"]


def test_referrer_listed_in_the_oci_fallback_tag_is_synced(services, upstream):
    subject = upstream.push_image("team/app", "v1", [b"signed image"])
    referrer = upstream.push_referrer("team/app", subject)
    descriptor = upstream.http().descriptor("team/app", referrer)
    index = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                        "manifests": [{**descriptor, "artifactType": "application/vnd.example.sig"}]}).encode()
    upstream.http().put_manifest("team/app", subject.replace(":", "-"), index, oci.OCI_INDEX)
    repo = make_repository(services, "team/app", upstream)

    result = sync(services, repo)

    assert result["added"] == ["v1"]   # the fallback tag itself is not a tag of ours
    assert [d["digest"] for d in content.list_referrers(services.db, repo["_id"], subject)] == [referrer]


def test_foreign_layers_stay_references(services, upstream):
    digest, foreign = upstream.push_foreign_image("team/app", "win")
    repo = make_repository(services, "team/app", upstream)

    result = sync(services, repo)

    assert result["added"] == ["win"] and digest in held(services, repo["_id"])["manifests"]
    assert not services.storage.exists(foreign)


# --- dry run ------------------------------------------------------------------------------------


def test_dry_run_computes_what_the_sync_then_does_and_stores_nothing(services, upstream):
    upstream.push_image("team/app", "v1", [b"one", b"two"])
    upstream.push_index("team/app", "multi")
    repo = make_repository(services, "team/app", upstream)

    planned = sync(services, repo, dry_run=True)

    assert held(services, repo["_id"]) == {"tags": {}, "manifests": set(), "blobs": set()}
    assert not services.storage.exists(sha256_digest(b"one"))
    done = sync(services, repo)
    for key in ("added", "updated", "removed", "skipped", "manifests", "blobs", "bytes"):
        assert planned[key] == done[key], key
    assert planned["bytes_to_fetch"] == done["bytes"] > 0


# --- auth -----------------------------------------------------------------------------------------


def test_https_with_basic_auth_and_the_ca(services, upstream_tls_basic):
    digest = upstream_tls_basic.push_image("team/app", "v1", [b"over tls"])
    repo = make_repository(services, "team/app", upstream_tls_basic)

    assert sync(services, repo)["added"] == ["v1"]
    assert held(services, repo["_id"])["tags"] == {"v1": digest}


def test_https_without_the_ca_fails_clearly(services, upstream_tls_basic):
    upstream_tls_basic.push_image("team/app", "v1", [b"over tls"])
    repo = make_repository(services, "team/app", upstream_tls_basic)
    feeds.set_feed(services.db, repo["_id"], {"ca_bundle": None})

    with pytest.raises(UpstreamError, match="TLS"):
        sync(services, repo)


def test_basic_auth_with_a_wrong_password_fails_clearly(services, upstream_tls_basic):
    upstream_tls_basic.push_image("team/app", "v1", [b"over tls"])
    repo = make_repository(services, "team/app", upstream_tls_basic,
                           credentials={"username": upstream_tls_basic.username, "password": "wrong"})

    with pytest.raises(UpstreamError, match="401.*credentials"):
        sync(services, repo)
    assert held(services, repo["_id"])["tags"] == {}


def test_token_auth_reuses_one_token_for_the_whole_sync(services, upstream_token):
    upstream_token.push_image("team/app", "v1", [b"one", b"two"])
    upstream_token.push_image("team/app", "v2", [b"three"])
    repo = make_repository(services, "team/app", upstream_token)
    issued_before = upstream_token.token_server.issued

    result = sync(services, repo)

    assert sorted(result["added"]) == ["v1", "v2"] and result["blobs"] == 5
    assert upstream_token.token_server.issued - issued_before == 1


def test_anonymous_token_for_a_public_repository(services, upstream_token):
    upstream_token.push_image("team/app", "v1", [b"public"])
    repo = make_repository(services, "team/app", upstream_token, credentials=None)
    feeds.set_feed(services.db, repo["_id"], {"credentials": None})

    assert sync(services, repo)["added"] == ["v1"]


# --- failures -------------------------------------------------------------------------------------


def test_sync_through_500_and_429_succeeds_after_retries(services, upstream, flaky_proxy):
    upstream.push_image("team/app", "v1", [b"one", b"two", b"three"])
    upstream.push_image("team/app", "v2", [b"four"])
    proxy = flaky_proxy(upstream, error_every=3, throttle_every=4, drop_every=7, retry_after="0")
    repo = make_repository(services, "team/app", proxy)

    result = sync(services, repo)

    assert sorted(result["added"]) == ["v1", "v2"] and result["blobs"] == 6
    assert proxy.counts["500"] and proxy.counts["429"]
    assert held(services, repo["_id"])["tags"] == upstream_tags(upstream)


def test_corrupted_blob_fails_naming_the_digest_and_nothing_becomes_visible(services, upstream, flaky_proxy):
    old = upstream.push_image("team/app", "v1", [b"first"])
    proxy = flaky_proxy(upstream)
    repo = make_repository(services, "team/app", proxy)
    sync(services, repo)
    upstream.push_image("team/app", "v1", [b"first", b"damaged on the way"])
    upstream.push_image("team/app", "v2", [b"new tag"])
    proxy.corrupt_digest = sha256_digest(b"damaged on the way")
    before = held(services, repo["_id"])

    with pytest.raises(UpstreamError, match=proxy.corrupt_digest):
        sync(services, repo)

    assert held(services, repo["_id"]) == before and before["tags"] == {"v1": old}
    assert not services.storage.exists(proxy.corrupt_digest)


def test_sync_killed_halfway_changes_nothing_and_the_rerun_fetches_only_the_rest(services, upstream, flaky_proxy):
    layers = [f"layer {n}".encode() * 1000 for n in range(6)]
    upstream.push_image("team/app", "v1", layers[:3])
    upstream.push_image("team/app", "v2", layers[3:])
    proxy = flaky_proxy(upstream)
    repo = make_repository(services, "team/app", proxy, max_downloads=1)

    with pytest.raises(TaskStopped):
        sync(services, repo, Reports(stop_after_blobs=3))
    assert held(services, repo["_id"]) == {"tags": {}, "manifests": set(), "blobs": set()}
    fetched_first = set(blob_requests(proxy))
    proxy.log.clear()

    rerun = sync(services, repo)

    fetched_again = set(blob_requests(proxy))
    assert len(fetched_first) >= 3 and rerun["blobs"] == 8 - len(fetched_first)
    assert not fetched_first & fetched_again
    assert held(services, repo["_id"])["tags"] == upstream_tags(upstream)


def test_sync_of_a_repository_without_feed_is_refused(services):
    repo = repositories.create_repository(services.db, "no/feed")
    with pytest.raises(SyncError, match="no feed"):
        sync_repository(services, Reports(), repo_id=repo["_id"])


def test_referrers_come_through_the_referrers_api_of_an_upstream_that_has_it(services, tmp_path):
    """docker-registry 2.8 has no referrers API; our own Crane has: serve one over HTTP as the upstream."""
    upstream_services = build_services(Settings(data_dir=str(tmp_path / "upstream"), mongo_url="mongomock://",
                                                mongo_database="upstream"))
    publisher = Publisher(upstream_services)
    upstream_repo = publisher.repository("team/app")
    image = publisher.image(upstream_repo, "1.0")
    empty = content.store_blob(upstream_services, upstream_repo, b"{}")
    signature = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                            "artifactType": "application/vnd.example.sig",
                            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty,
                                        "size": 2}],
                            "subject": {"mediaType": oci.OCI_MANIFEST, "digest": image.digest,
                                        "size": len(image.raw)}}).encode()
    signature_digest = oci.compute_digest(signature)
    content.store_manifest(upstream_services, upstream_repo, signature, oci.OCI_MANIFEST, signature_digest)
    publisher.publish(upstream_repo)
    http = make_server("127.0.0.1", 0, CraneUnderTest(publisher.published_dir).app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        crane_upstream = SimpleNamespace(url=f"http://127.0.0.1:{http.server_port}")
        with UpstreamClient(feeds.Feed(url=crane_upstream.url, upstream_name="team/app")) as client:
            assert [found["digest"] for found in client.referrers(image.digest)] == [signature_digest]
        repo = make_repository(services, "team/app", crane_upstream)
        sync(services, repo)
    finally:
        http.shutdown()

    holding = held(services, repo["_id"])
    assert holding["tags"] == {"1.0": image.digest}
    assert signature_digest in holding["manifests"]
    assert content.list_referrers(services.db, repo["_id"], image.digest)[0]["digest"] == signature_digest
