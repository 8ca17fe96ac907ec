"""The fast path answers exactly what Flask answers: same status, headers and body, for every request.

Each request goes to two apps over the same published tree, one with the fast
path in front (what ``crane`` runs) and one Flask-only. Plain pulls must be
answered without Flask; everything else must reach Flask.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import pytest

from crane.app import create_app
from crane.fastpath import FastPath
from pulp_registry import oci
from tests.crane.conftest import ALL_MANIFEST_TYPES

ACCEPTS = {
    "all": ALL_MANIFEST_TYPES,
    "none": None,
    "schema2": oci.DOCKER_MANIFEST,
    "oci": oci.OCI_MANIFEST,
    "list": oci.DOCKER_MANIFEST_LIST,
    "index": f"{oci.OCI_INDEX};q=0.9, {oci.OCI_MANIFEST}",
    "wildcard": "*/*",
}
SERVER_HEADERS = {"Date", "Server"}


class TwoCranes:
    """A Crane with the fast path and a Flask-only one over one tree; counts requests that reach Flask."""

    def __init__(self, crane: Any) -> None:
        self.crane = crane
        self.fast_app = crane.app
        assert isinstance(self.fast_app.wsgi_app, FastPath)
        self.flask_app = create_app(crane.settings, crane.tree, fast_path=False)
        self.reached_flask = 0
        fast_path = self.fast_app.wsgi_app
        inner = fast_path.app

        def counting(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            self.reached_flask += 1
            return inner(environ, start_response)

        fast_path.app = counting

    def compare(self, method: str, path: str, headers: dict[str, str] | None = None,
                query_string: str = "") -> tuple[Any, bool]:
        """Both answers, asserted equal; returns the fast app's and whether Flask answered it."""
        before = self.reached_flask
        answers = []
        for app in (self.fast_app, self.flask_app):
            answers.append(app.test_client().open(path, method=method, headers=headers or {},
                                                  query_string=query_string))
        fast, flask = answers
        described = f"{method} {path} {headers}"
        assert fast.status == flask.status, described
        assert _headers(fast) == _headers(flask), described
        assert fast.data == flask.data, described
        return fast, self.reached_flask > before

    def fast(self, method: str, path: str, accept: str | None = ALL_MANIFEST_TYPES) -> Any:
        """A plain pull request: same answer as Flask's, given without Flask."""
        response, reached_flask = self.compare(method, path, {"Accept": accept} if accept else None)
        assert response.status_code == 200, f"{method} {path}: {response.status} {response.data!r}"
        assert not reached_flask, f"{method} {path} was not answered by the fast path"
        return response

    def flask(self, method: str, path: str, headers: dict[str, str] | None = None,
              query_string: str = "") -> Any:
        """A request only Flask answers: same answer either way, and Flask gave it."""
        response, reached_flask = self.compare(method, path, headers, query_string)
        assert reached_flask, f"{method} {path} {headers} should have been left to Flask"
        return response


def _headers(response: Any) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.items() if name not in SERVER_HEADERS]


@pytest.fixture
def content(publisher, crane):
    repo = publisher.repository("my/app")
    images = {
        "oci": publisher.image(repo, "oci"),
        "docker": publisher.image(repo, "docker", media_type=oci.DOCKER_MANIFEST),
        "untagged": publisher.image(repo, None, layers=[b"untagged layer"]),
    }
    multi = publisher.repository("multi/arch")
    amd64 = publisher.image(multi, None, media_type=oci.DOCKER_MANIFEST, architecture="amd64")
    arm64 = publisher.image(multi, None, media_type=oci.DOCKER_MANIFEST, architecture="arm64")
    oci_amd64 = publisher.image(multi, None, architecture="amd64")
    images["list"] = publisher.index(multi, "list", [(amd64, "amd64"), (arm64, "arm64")], oci.DOCKER_MANIFEST_LIST)
    images["arm-only"] = publisher.index(multi, "arm-only", [(arm64, "arm64")], oci.DOCKER_MANIFEST_LIST)
    images["index"] = publisher.index(multi, "index", [(oci_amd64, "amd64")], oci.OCI_INDEX)
    images["amd64"] = amd64
    odd = publisher.repository("team/manifests/blobs")
    images["odd"] = publisher.image(odd, "latest")
    secret = publisher.repository("secret/app", protected=True)
    images["secret"] = publisher.image(secret, "latest")
    for published in (repo, multi, odd, secret):
        publisher.publish(published)
    crane.tick()
    return images


@pytest.fixture
def cranes(crane, content) -> TwoCranes:
    return TwoCranes(crane)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("accept", sorted(ACCEPTS))
def test_manifests_by_tag_and_digest_answer_as_flask_does_for_every_accept_header(cranes, content, method, accept):
    references = [("my/app", "oci"), ("my/app", "docker"), ("my/app", content["untagged"].digest),
                  ("multi/arch", "list"), ("multi/arch", "arm-only"), ("multi/arch", "index"),
                  ("multi/arch", content["list"].digest), ("multi/arch", content["index"].digest),
                  ("multi/arch", content["amd64"].digest)]
    answered = 0
    for name, reference in references:
        path = f"/v2/{name}/manifests/{reference}"
        headers = {"Accept": ACCEPTS[accept]} if ACCEPTS[accept] else None
        response, reached_flask = cranes.compare(method, path, headers)
        # Errors (OCI content to a client that does not accept it...) are Flask's to give.
        assert reached_flask == (response.status_code != 200), f"{method} {path} {accept}"
        answered += response.status_code == 200
    assert answered > 0


def test_the_fast_path_sends_the_stored_bytes_and_the_usual_headers(cranes, content):
    image = content["oci"]
    response = cranes.fast("GET", "/v2/my/app/manifests/oci")
    assert response.data == image.raw
    assert response.headers["Content-Type"] == oci.OCI_MANIFEST
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    by_digest = cranes.fast("HEAD", f"/v2/my/app/manifests/{image.digest}")
    assert by_digest.data == b"" and by_digest.headers["Content-Length"] == str(len(image.raw))
    assert "immutable" in by_digest.headers["Cache-Control"]
    # A docker list by tag to a schema-2-only client: its linux/amd64 image, from memory too.
    child = cranes.fast("GET", "/v2/multi/arch/manifests/list", accept=oci.DOCKER_MANIFEST)
    assert child.data == content["amd64"].raw


def test_blob_head_answers_as_flask_does(cranes, content):
    image = content["oci"]
    for digest in (image.layers[0][0], image.config_digest, image.digest):
        response = cranes.fast("HEAD", f"/v2/my/app/blobs/{digest}", accept=None)
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["Docker-Content-Digest"] == digest
    foreign = content["amd64"].layers[0][0]
    assert cranes.flask("HEAD", f"/v2/my/app/blobs/{foreign}").status_code == 404
    assert cranes.flask("HEAD", "/v2/my/app/blobs/sha256:" + "2" * 64).status_code == 404


def test_repository_names_with_manifests_and_blobs_components(cranes, content):
    image = content["odd"]
    response = cranes.fast("GET", "/v2/team/manifests/blobs/manifests/latest")
    assert response.data == image.raw
    cranes.fast("HEAD", f"/v2/team/manifests/blobs/blobs/{image.layers[0][0]}", accept=None)
    assert cranes.flask("GET", "/v2/team/manifests/blobs/manifests/latest/extra").status_code >= 400


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_errors_and_unusual_requests_are_left_to_flask(cranes, content, method):
    statuses = {
        "/v2/my/app/manifests/nope": 404,                              # unknown tag
        "/v2/my/app/manifests/sha256:" + "1" * 64: 404,                # unknown digest
        "/v2/other/app/manifests/oci": 404,                            # unknown repository
        "/v2/My/App/manifests/oci": 400,                               # invalid name
        "/v2/my/app/manifests/sha256:zz": 404,                         # invalid digest: no such manifest
        "/v2/my/app/manifests/bad%20tag": 404,                         # invalid tag: no such manifest
        "/v2/my/app/manifests/oci/": 404,                              # not a manifest path
        "/v2/secret/app/manifests/latest": 401,                        # protected repository
        f"/v2/secret/app/blobs/{content['secret'].layers[0][0]}": 401,
        "/v2/my/app/blobs/sha256:zz": 400,
    }
    for path, status in statuses.items():
        assert cranes.flask(method, path).status_code == status, path
    assert cranes.flask(method, "/v2/my/app/manifests/oci", accept_oci := {"Accept": oci.DOCKER_MANIFEST}
                        ).status_code == 404, accept_oci


def test_conditional_ranged_authorized_and_query_requests_are_left_to_flask(cranes, content):
    image = content["oci"]
    accept = {"Accept": ALL_MANIFEST_TYPES}
    not_modified = cranes.flask("GET", "/v2/my/app/manifests/oci", {**accept, "If-None-Match": f'"{image.digest}"'})
    assert not_modified.status_code == 304
    assert cranes.flask("GET", "/v2/my/app/manifests/oci", {**accept, "If-None-Match": '"other"'}).status_code == 200
    assert cranes.flask("GET", "/v2/my/app/manifests/oci", accept, query_string="x=1").status_code == 200
    layer = image.layers[0][0]
    assert cranes.flask("HEAD", f"/v2/my/app/blobs/{layer}", {"Range": "bytes=0-1"}).status_code == 200
    assert cranes.flask("GET", f"/v2/my/app/blobs/{layer}").status_code == 200   # streamed by Flask
    for path in ("/", "/v2/", "/v2/_catalog", "/v2/my/app/tags/list"):
        assert cranes.flask("GET", path).status_code == 200, path
    assert cranes.flask("DELETE", "/v2/my/app/manifests/oci").status_code == 405


def test_a_republish_is_served_at_once_and_an_unpublish_leaves_it_to_flask(publisher, crane, cranes, content):
    cranes.fast("GET", "/v2/my/app/manifests/oci")
    repo = publisher.services.db.repositories.find_one({"name": "my/app"})
    newer = publisher.image(repo, "oci", layers=[b"a newer layer"])
    publisher.publish(repo)
    crane.tick()
    assert cranes.fast("GET", "/v2/my/app/manifests/oci").data == newer.raw
    assert cranes.fast("HEAD", "/v2/my/app/manifests/oci").headers["Docker-Content-Digest"] == newer.digest
    publisher.unpublish(repo)
    crane.tick()
    assert cranes.flask("GET", "/v2/my/app/manifests/oci").status_code == 404


@pytest.mark.parametrize("authorization", ["Bearer junk", "Basic YWRtaW46c2VjcmV0", "Bearer a.b.c"])
def test_public_pulls_with_an_authorization_header_are_answered_fast_as_flask_does(cranes, content,
                                                                                   authorization):
    """With token auth, every client sends a token (an anonymous one at least): public pulls never read it."""
    image = content["oci"]
    for method, path in (("GET", "/v2/my/app/manifests/oci"), ("HEAD", "/v2/my/app/manifests/oci"),
                         ("HEAD", f"/v2/my/app/blobs/{image.layers[0][0]}")):
        response, reached_flask = cranes.compare(method, path, {"Accept": ALL_MANIFEST_TYPES,
                                                                "Authorization": authorization})
        assert response.status_code == 200 and not reached_flask, f"{method} {path}"
    assert cranes.flask("GET", "/v2/secret/app/manifests/latest", {"Authorization": authorization}
                        ).status_code == 401


def test_with_token_auth_public_pulls_stay_fast_and_protected_ones_go_to_flask(make_crane, token_auth, content):
    cranes = TwoCranes(make_crane(token_realm="http://127.0.0.1:8080/token", **token_auth))
    cranes.fast("GET", "/v2/my/app/manifests/oci")
    cranes.fast("HEAD", f"/v2/my/app/blobs/{content['oci'].layers[0][0]}")
    assert cranes.flask("GET", "/v2/").status_code == 401
    assert cranes.flask("GET", "/v2/secret/app/manifests/latest").status_code == 401


def test_without_anonymous_pull_every_request_is_left_to_flask(make_crane, token_auth, content):
    cranes = TwoCranes(make_crane(anonymous_pull=False, **token_auth))
    for method in ("GET", "HEAD"):
        assert cranes.flask(method, "/v2/my/app/manifests/oci").status_code == 401
        assert cranes.flask(method, f"/v2/my/app/blobs/{content['oci'].config_digest}").status_code == 401


def test_the_fast_path_can_be_turned_off(crane, content):
    app = create_app(crane.settings, crane.tree, fast_path=False)
    assert not isinstance(app.wsgi_app, FastPath)
    assert app.test_client().get("/v2/my/app/manifests/docker").data == content["docker"].raw
