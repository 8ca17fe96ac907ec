"""The upstream client against real registries: pagination, media types, blobs, auth, retries."""
from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server

from pulp_registry import feeds, oci
from pulp_registry.sync.upstream import UpstreamClient, UpstreamError, upstream_repository
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.servers import free_port
from tests.sync.upstreams import big_layer, sha256_digest


def client_for(source: Any, name: str = "team/app", **settings: Any) -> UpstreamClient:
    """A client with the feed a user would give for ``source`` (its CA and credentials)."""
    values: dict[str, Any] = {"url": source.url, "upstream_name": name,
                              "ca_bundle": getattr(source, "ca_bundle", None),
                              "username": getattr(source, "username", None),
                              "password": getattr(source, "password", None)}
    values.update(settings)
    options = {key: values.pop(key) for key in ("max_tries", "backoff_seconds") if key in values}
    return UpstreamClient(feeds.Feed(**values), **options)


@pytest.fixture
def crane_upstream(services) -> Iterator[Any]:
    """Our own Crane over HTTP as the upstream: it pages tag lists (docker-registry 2.8 ignores ``n``)."""
    publisher = Publisher(services)
    repo = publisher.repository("team/app")
    for n in range(5):
        publisher.image(repo, f"t{n}", [f"layer {n}".encode()])
    publisher.publish(repo)
    http = make_server("127.0.0.1", 0, CraneUnderTest(publisher.published_dir).app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{http.server_port}")
    finally:
        http.shutdown()


def test_tag_list_follows_link_pagination(crane_upstream):
    with client_for(crane_upstream) as client:
        tags = client.list_tags(page_size=2)
        assert tags == [f"t{n}" for n in range(5)] and client.requests_sent == 3


def test_manifest_of_an_index_comes_as_it_is_stored(upstream):
    index_digest, children = upstream.push_index("team/app", "multi")
    with client_for(upstream) as client:
        index = client.get_manifest("multi")
        child = client.get_manifest(children["linux/amd64"])

    assert (index.media_type, index.digest) == (oci.OCI_INDEX, index_digest)
    assert sha256_digest(index.raw) == index_digest
    assert child.digest == children["linux/amd64"] and child.media_type == oci.OCI_MANIFEST


def test_blob_streams_in_chunks_with_its_size(upstream):
    upstream.push_big_image("team/app", "big", size_mib=12)
    layer = big_layer(12)
    with client_for(upstream) as client, client.open_blob(sha256_digest(layer)) as stream:
        chunks = list(stream)

    assert stream.size == len(layer) and len(chunks) > 1 and b"".join(chunks) == layer


def test_referrers_from_the_fallback_tag_or_none(upstream):
    subject = upstream.push_image("team/app", "v1", [b"subject"])
    with client_for(upstream) as client:
        assert client.referrers(subject) == []
    referrer = upstream.push_referrer("team/app", subject)
    descriptor = upstream.http().descriptor("team/app", referrer)
    index = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [descriptor]}).encode()
    upstream.http().put_manifest("team/app", subject.replace(":", "-"), index, oci.OCI_INDEX)

    with client_for(upstream) as client:
        assert [entry["digest"] for entry in client.referrers(subject)] == [referrer]


def test_cosign_tags_asked_one_by_one_or_read_from_the_tag_list(upstream):
    subject = upstream.push_image("team/app", "v1", [b"subject"])
    upstream.push_cosign_tag("team/app", subject)
    expected = [subject.replace(":", "-") + ".sig"]
    with client_for(upstream) as client:
        assert client.cosign_tags(subject) == expected
        assert client.cosign_tags(subject, client.list_tags()) == expected


def test_unknown_repository_is_a_clear_one_line_error(upstream):
    with client_for(upstream, name="no/such") as client, pytest.raises(UpstreamError) as raised:
        client.get_manifest("latest")
    message = str(raised.value)
    assert "\n" not in message and "no/such" in message and "404" in message


def test_nothing_listening_fails_after_the_bounded_tries():
    class Nowhere:
        url = f"http://127.0.0.1:{free_port()}"

    with client_for(Nowhere, max_tries=3, backoff_seconds=0.01) as client, \
            pytest.raises(UpstreamError, match="connection failed.*after 3 tries"):
        client.list_tags()


def test_500_and_dropped_connections_are_retried(upstream, flaky_proxy):
    digest = upstream.push_image("team/app", "v1", [b"one"])
    proxy = flaky_proxy(upstream, error_every=2, drop_every=3)
    with client_for(proxy, backoff_seconds=0.01) as client:
        fetched = [client.get_manifest("v1").digest for _ in range(4)]

    assert fetched == [digest] * 4 and proxy.counts["500"] and proxy.counts["dropped"]


def test_429_waits_for_retry_after(upstream, flaky_proxy):
    digest = upstream.push_image("team/app", "v1", [b"one"])
    proxy = flaky_proxy(upstream, throttle_every=2, retry_after="1")
    with client_for(proxy, backoff_seconds=0.01) as client:
        client.get_manifest("v1")   # the first request passes, the second is throttled
        started = time.monotonic()
        assert client.get_manifest("v1").digest == digest
        assert time.monotonic() - started >= 1.0 and proxy.counts["429"] == 1


def test_always_failing_upstream_gives_up_after_max_tries(upstream, flaky_proxy):
    upstream.push_image("team/app", "v1", [b"one"])
    proxy = flaky_proxy(upstream, error_rate=1.0)
    with client_for(proxy, max_tries=3, backoff_seconds=0.01) as client, \
            pytest.raises(UpstreamError, match="500.*after 3 tries"):
        client.get_manifest("v1")
    assert proxy.counts["500"] == 3


def test_requests_per_second_spaces_requests(upstream):
    upstream.push_image("team/app", "v1", [b"one"])
    with client_for(upstream, requests_per_second=10.0) as client:
        started = time.monotonic()
        for _ in range(6):
            client.get_manifest("v1")
    assert time.monotonic() - started >= 0.5


def test_basic_auth_over_tls_with_the_feed_ca(upstream_tls_basic):
    digest = upstream_tls_basic.push_image("team/app", "v1", [b"tls"])
    with client_for(upstream_tls_basic) as client:
        assert client.get_manifest("v1").digest == digest
    with client_for(upstream_tls_basic, ca_bundle=None, tls_verify=False) as client:
        assert client.get_manifest("v1").digest == digest
    with client_for(upstream_tls_basic, username=None, password=None) as client, \
            pytest.raises(UpstreamError, match="user name and password"):
        client.list_tags()


def test_token_is_reused_until_it_expires(upstream_token):
    upstream_token.push_image("team/app", "v1", [b"one"])
    server = upstream_token.token_server
    before = server.issued
    with client_for(upstream_token) as client:
        for _ in range(5):
            client.get_manifest("v1")
        assert server.issued - before == 1
        assert server.requests[-1].scopes == ["repository:team/app:pull"]
        assert server.requests[-1].username == upstream_token.username
        client._token_expires = time.monotonic() - 1   # as if the token's lifetime had passed
        client.get_manifest("v1")
        assert server.issued - before == 2


def test_anonymous_token_and_wrong_credentials(upstream_token):
    upstream_token.push_image("team/app", "v1", [b"one"])
    with client_for(upstream_token, username=None, password=None) as client:
        assert client.get_manifest("v1").digest
        assert upstream_token.token_server.requests[-1].username is None
    with client_for(upstream_token, password="wrong") as client, \
            pytest.raises(UpstreamError, match="token request.*401.*credentials"):
        client.list_tags()


def test_static_bearer_token_is_sent_from_the_start(upstream_token):
    upstream_token.push_image("team/app", "v1", [b"one"])
    server = upstream_token.token_server
    token = server.mint(["repository:team/app:pull"])
    before = server.issued
    with client_for(upstream_token, username=None, password=None, token=token) as client:
        assert client.get_manifest("v1").digest
    assert server.issued == before
    with client_for(upstream_token, username=None, password=None, token="not-a-token") as client, \
            pytest.raises(UpstreamError, match="refused the feed's token"):
        client.list_tags()


@pytest.mark.parametrize("url, name, expected", [
    ("https://registry-1.docker.io", "alpine", "library/alpine"),
    ("https://docker.io", "team/app", "team/app"),
    ("https://quay.io", "alpine", "alpine"),
])
def test_docker_hub_names_without_slash_are_library_images(url, name, expected):
    assert upstream_repository(feeds.Feed(url=url, upstream_name=name)) == expected
