"""Blobs: served only through a repository that holds them, with Range, from the published tree."""
from __future__ import annotations

import pytest

from tests.crane.conftest import error_code

LAYER = bytes(range(256)) * 40   # 10240 bytes


@pytest.fixture
def image(publisher, crane):
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest", layers=[LAYER])
    publisher.publish(repo)
    crane.tick()
    return image


def test_get_answers_the_blob_with_its_headers(crane, image):
    digest, data = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.data == data
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_head_answers_size_and_digest_without_a_body(crane, image):
    response = crane.head(f"/v2/my/app/blobs/{image.config_digest}")
    assert response.status_code == 200
    assert response.data == b""
    config = crane.get(f"/v2/my/app/blobs/{image.config_digest}").data
    assert response.headers["Content-Length"] == str(len(config))
    assert response.headers["Docker-Content-Digest"] == image.config_digest


def test_a_range_request_answers_206_with_that_slice(crane, image):
    digest, data = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.data == data[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert response.headers["Docker-Content-Digest"] == digest


def test_a_range_outside_the_blob_answers_416(crane, image):
    digest, data = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}", headers={"Range": f"bytes={len(data) + 10}-"})
    assert response.status_code == 416
    assert error_code(response) == "RANGE_INVALID"
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_manifest_can_be_fetched_as_a_blob_of_its_repository(crane, image):
    response = crane.get(f"/v2/my/app/blobs/{image.digest}")
    assert response.status_code == 200
    assert response.data == image.raw


def test_a_blob_of_another_repository_is_blob_unknown_here(publisher, crane, image):
    other = publisher.repository("other/app")
    foreign = publisher.image(other, "x", layers=[b"only in other/app"])
    publisher.publish(other)
    crane.tick()
    digest = foreign.layers[0][0]
    assert crane.get(f"/v2/other/app/blobs/{digest}").status_code == 200
    for method in (crane.get, crane.head):
        response = method(f"/v2/my/app/blobs/{digest}")
        assert response.status_code == 404
    assert error_code(crane.get(f"/v2/my/app/blobs/{digest}")) == "BLOB_UNKNOWN"


def test_unknown_blob_answers_blob_unknown(crane, image):
    response = crane.get("/v2/my/app/blobs/sha256:" + "2" * 64)
    assert response.status_code == 404
    assert error_code(response) == "BLOB_UNKNOWN"


def test_redirect_mode_sends_the_client_to_the_content_url(make_crane, image):
    crane = make_crane(blob_serving="redirect", blob_url_prefix="https://cdn.example.com/blobs/")
    digest, _ = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}")
    assert response.status_code == 307
    assert response.headers["Location"] == f"https://cdn.example.com/blobs/sha256/{digest.split(':')[1]}"
    assert response.headers["Docker-Content-Digest"] == digest


def test_x_accel_redirect_mode_hands_the_file_to_the_front_server(make_crane, image):
    crane = make_crane(blob_serving="x-accel-redirect", blob_url_prefix="/_published_blobs")
    digest, _ = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}")
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == f"/_published_blobs/sha256/{digest.split(':')[1]}"
    assert response.data == b""


def test_x_sendfile_mode_names_the_file_inside_the_published_tree(make_crane, image, publisher):
    crane = make_crane(blob_serving="x-sendfile")
    digest, data = image.layers[0]
    response = crane.get(f"/v2/my/app/blobs/{digest}")
    path = response.headers["X-Sendfile"]
    assert path.startswith(str(publisher.published_dir.resolve()))
    assert open(path, "rb").read() == data
