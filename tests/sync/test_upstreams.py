"""The sync tests' upstreams work as real registries do: skopeo and plain requests agree.

Only requests and skopeo here (no project code): these tests show the fixtures
are sound, so a failing sync test points at the sync, not at its upstream.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.images import skopeo
from tests.sync.flaky_proxy import flip_first_byte
from tests.sync.upstreams import (MANIFEST_ACCEPT, OCI_INDEX, Upstream, big_layer, ca_file, cosign_tag,
                                  parse_challenge, push_image, sha256_digest)


def inspect_raw(upstream: Upstream, name: str, reference: str) -> bytes:
    separator = "@" if reference.startswith("sha256:") else ":"
    return skopeo("inspect", "--raw", *upstream.skopeo_args(),
                  f"docker://{upstream.host}/{name}{separator}{reference}").stdout


def list_tags(upstream: Upstream, name: str) -> list[str]:
    return json.loads(skopeo("list-tags", *upstream.skopeo_args(), f"docker://{upstream.host}/{name}").stdout)["Tags"]


def test_plain_upstream_serves_pushed_images_to_skopeo(upstream):
    digest = upstream.push_image("team/app", "v1", [b"layer one", b"layer two"])
    real = upstream.skopeo_push("team/app", "v2", layers=[{"hello.txt": b"from umoci\n"}])

    assert sorted(list_tags(upstream, "team/app")) == ["v1", "v2"]
    assert sha256_digest(inspect_raw(upstream, "team/app", "v1")) == digest
    assert sha256_digest(inspect_raw(upstream, "team/app", "v2")) == real
    blob = requests.get(f"{upstream.url}/v2/team/app/blobs/{sha256_digest(b'layer two')}", timeout=30)
    assert blob.content == b"layer two"
    assert upstream.ca_bundle is None and upstream.username is None


def test_index_lists_one_image_per_platform(upstream):
    index_digest, children = upstream.push_index("team/multi", "latest", ["linux/amd64", "linux/arm64/v8"])

    raw = inspect_raw(upstream, "team/multi", "latest")
    index = json.loads(raw)
    assert sha256_digest(raw) == index_digest and index["mediaType"] == OCI_INDEX
    assert {child["digest"]: child["platform"] for child in index["manifests"]} == {
        children["linux/amd64"]: {"os": "linux", "architecture": "amd64"},
        children["linux/arm64/v8"]: {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    for digest in children.values():
        assert sha256_digest(inspect_raw(upstream, "team/multi", digest)) == digest


def test_big_image_layer_is_served_whole(upstream):
    digest = upstream.push_big_image("team/big", "v1", size_mib=12)
    manifest = json.loads(inspect_raw(upstream, "team/big", digest))
    layer = manifest["layers"][0]
    assert layer["size"] == 12 * 1024 * 1024 and layer["digest"] == sha256_digest(big_layer(12))


def test_referrers_api_is_missing_so_the_cosign_tag_scheme_is_the_fallback(upstream):
    subject = upstream.push_image("team/app", "v1", [b"signed layer"])
    referrer = upstream.push_referrer("team/app", subject)
    signature = upstream.push_cosign_tag("team/app", subject)

    stored = json.loads(inspect_raw(upstream, "team/app", referrer))
    assert stored["subject"]["digest"] == subject and stored["artifactType"] == "application/vnd.example.sig"
    assert requests.get(f"{upstream.url}/v2/team/app/referrers/{subject}", timeout=30).status_code == 404
    assert cosign_tag(subject) in list_tags(upstream, "team/app")
    assert sha256_digest(inspect_raw(upstream, "team/app", cosign_tag(subject))) == signature


def test_foreign_layer_is_referenced_but_never_uploaded(upstream):
    digest, foreign = upstream.push_foreign_image("team/foreign", "v1")
    layers = json.loads(inspect_raw(upstream, "team/foreign", digest))["layers"]
    assert layers[-1]["digest"] == foreign and layers[-1]["urls"]
    assert requests.head(f"{upstream.url}/v2/team/foreign/blobs/{foreign}", timeout=30).status_code == 404


def test_tls_basic_upstream_needs_its_ca_and_credentials(upstream_tls_basic):
    up = upstream_tls_basic
    digest = up.push_image("team/app", "v1", [b"tls layer"])
    manifest_url = f"{up.url}/v2/team/app/manifests/v1"
    accept = {"Accept": MANIFEST_ACCEPT}

    assert up.url.startswith("https://127.0.0.1:") and "BEGIN CERTIFICATE" in up.ca_bundle
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(manifest_url, timeout=30)
    anonymous = requests.get(manifest_url, headers=accept, verify=ca_file(up.ca_bundle), timeout=30)
    assert anonymous.status_code == 401
    assert parse_challenge(anonymous.headers["WWW-Authenticate"])[0] == "basic"
    wrong = requests.get(manifest_url, headers=accept, auth=(up.username, "wrong"),
                         verify=ca_file(up.ca_bundle), timeout=30)
    assert wrong.status_code == 401
    served = requests.get(manifest_url, headers=accept, auth=(up.username, up.password),
                          verify=ca_file(up.ca_bundle), timeout=30)
    assert served.status_code == 200 and sha256_digest(served.content) == digest
    assert list_tags(up, "team/app") == ["v1"]


def test_token_upstream_issues_tokens_the_registry_accepts(upstream_token):
    up, tokens = upstream_token, upstream_token.token_server
    digest = up.push_image("team/app", "v1", [b"token layer"])
    up.push_image("private/app", "v1", [b"private layer"])
    manifest_url = f"{up.url}/v2/team/app/manifests/v1"

    challenge = requests.get(manifest_url, timeout=30)
    scheme, params = parse_challenge(challenge.headers["WWW-Authenticate"])
    assert challenge.status_code == 401 and scheme == "bearer"
    assert params == {"realm": f"{tokens.url}/token", "service": tokens.service,
                      "scope": "repository:team/app:pull"}

    issued_before = tokens.issued
    anonymous = requests.get(params["realm"], params={"service": params["service"], "scope": params["scope"]},
                             timeout=30).json()["token"]
    served = requests.get(manifest_url, headers={"Authorization": f"Bearer {anonymous}", "Accept": MANIFEST_ACCEPT},
                          timeout=30)
    assert served.status_code == 200 and sha256_digest(served.content) == digest
    again = requests.get(manifest_url, headers={"Authorization": f"Bearer {anonymous}", "Accept": MANIFEST_ACCEPT},
                         timeout=30)
    assert again.status_code == 200 and tokens.issued == issued_before + 1   # one token, used twice

    private = requests.get(params["realm"], params={"service": params["service"],
                                                    "scope": "repository:private/app:pull"}, timeout=30).json()
    refused = requests.get(f"{up.url}/v2/private/app/manifests/v1",
                           headers={"Authorization": f"Bearer {private['token']}"}, timeout=30)
    assert refused.status_code == 401 and tokens.requests[-1].granted == []
    bad = requests.get(params["realm"], params={"service": params["service"], "scope": params["scope"]},
                       auth=(up.username, "wrong"), timeout=30)
    assert bad.status_code == 401 and tokens.failures == 1
    assert list_tags(up, "private/app") == ["v1"]   # skopeo runs the token flow with the credentials


def test_flaky_proxy_fails_some_requests_and_passes_the_rest(upstream, flaky_proxy):
    digest = upstream.push_image("team/app", "v1", [b"proxied layer"])
    proxy = flaky_proxy(upstream, error_every=3, throttle_every=4)
    url = f"{proxy.url}/v2/team/app/manifests/v1"

    statuses = [requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=30) for _ in range(12)]

    assert [r.status_code for r in statuses] == [200, 200, 500, 429, 200, 500, 200, 429, 500, 200, 200, 500]
    assert all(r.headers["Retry-After"] == "1" for r in statuses if r.status_code == 429)
    assert all(sha256_digest(r.content) == digest for r in statuses if r.status_code == 200)
    assert proxy.counts["500"] == 4 and proxy.counts["429"] == 2 and proxy.counts["passed"] == 6

    proxy.configure(error_every=0, throttle_every=0, drop_every=2)
    accept = {"Accept": MANIFEST_ACCEPT}
    assert requests.get(url, headers=accept, timeout=30).status_code == 200
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=accept, timeout=30)
    assert proxy.counts["dropped"] == 1


def test_flaky_proxy_rewrites_locations_and_keeps_challenges(upstream_token, flaky_proxy):
    proxy = flaky_proxy(upstream_token)
    challenge = requests.get(f"{proxy.url}/v2/team/app/manifests/v1", timeout=30)
    assert challenge.status_code == 401
    assert parse_challenge(challenge.headers["WWW-Authenticate"])[1]["realm"] == upstream_token.token_server.url + "/token"

    pushed = push_image(proxy.url, "team/app", "v1", [b"through the proxy"], creds=upstream_token.creds)
    assert upstream_token.http().descriptor("team/app", "v1")["digest"] == pushed
    assert any(method == "PUT" and "/blobs/uploads/" in path for method, path, _ in proxy.log)


def test_flaky_proxy_corrupts_one_blob_with_the_same_length(upstream_tls_basic, flaky_proxy):
    layer = b"these bytes will be damaged on the way"
    upstream_tls_basic.push_image("team/app", "v1", [layer, b"an intact layer"])
    proxy = flaky_proxy(upstream_tls_basic)
    proxy.corrupt_digest = sha256_digest(layer)
    creds = (proxy.username, proxy.password)

    damaged = requests.get(f"{proxy.url}/v2/team/app/blobs/{sha256_digest(layer)}", auth=creds, timeout=30)
    intact = requests.get(f"{proxy.url}/v2/team/app/blobs/{sha256_digest(b'an intact layer')}", auth=creds,
                          timeout=30)

    assert damaged.status_code == 200 and len(damaged.content) == len(layer)
    assert damaged.content == flip_first_byte(layer) and sha256_digest(damaged.content) != sha256_digest(layer)
    assert damaged.headers["Docker-Content-Digest"] == sha256_digest(layer)   # the upstream's claim, unchanged
    assert intact.content == b"an intact layer"
    assert proxy.counts["corrupted"] == 1


def test_flaky_proxy_streams_a_big_blob_unchanged(upstream, flaky_proxy, tmp_path: Path):
    upstream.push_big_image("team/big", "v1", size_mib=12)
    proxy = flaky_proxy(upstream)
    with requests.get(f"{proxy.url}/v2/team/big/blobs/{sha256_digest(big_layer(12))}", stream=True,
                      timeout=30) as response:
        received = b"".join(response.iter_content(1024 * 1024))
    assert sha256_digest(received) == sha256_digest(big_layer(12))


def test_flaky_proxy_random_failures_are_seeded_and_spare_the_ping(upstream, flaky_proxy):
    upstream.push_image("team/app", "v1", [b"random layer"])
    proxy = flaky_proxy(upstream, error_rate=0.3, throttle_rate=0.2, seed=7)
    url = f"{proxy.url}/v2/team/app/manifests/v1"

    first = [requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=30).status_code for _ in range(30)]
    proxy.configure()   # same policy, counting restarts: the same sequence again
    second = [requests.get(url, headers={"Accept": MANIFEST_ACCEPT}, timeout=30).status_code for _ in range(30)]

    assert first == second and {200, 429, 500} == set(first)
    assert all(requests.get(f"{proxy.url}/v2/", timeout=30).status_code == 200 for _ in range(10))


def test_deleting_a_tag_upstream_removes_it_from_the_tag_list(upstream):
    upstream.push_image("team/app", "keep", [b"kept"])
    upstream.push_image("team/app", "gone", [b"deleted"])
    upstream.delete_tag("team/app", "gone")
    assert list_tags(upstream, "team/app") == ["keep"]


def test_a_minted_token_works_as_a_static_bearer_token_until_it_expires(upstream_token):
    up, tokens = upstream_token, upstream_token.token_server
    digest = up.push_image("private/app", "v1", [b"static token layer"])
    url = f"{up.url}/v2/private/app/manifests/v1"
    issued = tokens.issued

    static = tokens.mint(["repository:private/app:pull"], username=up.username, expires_in=3600)
    served = requests.get(url, headers={"Authorization": f"Bearer {static}", "Accept": MANIFEST_ACCEPT}, timeout=30)
    assert served.status_code == 200 and sha256_digest(served.content) == digest and tokens.issued == issued

    # distribution 2.8 allows 60 s of clock skew past ``exp``; well past it, the token is refused
    expired = tokens.mint(["repository:private/app:pull"], username=up.username, expires_in=-120)
    refused = requests.get(url, headers={"Authorization": f"Bearer {expired}"}, timeout=30)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
