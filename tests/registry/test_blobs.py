"""``HEAD``/``GET /v2/<name>/blobs/<digest>``: how clients learn which blobs they need not send."""
from __future__ import annotations

from tests.registry.conftest import sha256


def test_head_of_a_held_blob_gives_its_size_and_digest(client, auth, push):
    digest = push.blob("my/app", b"0123456789")
    response = client.head(f"/v2/my/app/blobs/{digest}", headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "10"
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.data == b""


def test_get_of_a_held_blob_streams_its_bytes(client, auth, push):
    digest = push.blob("my/app", b"layer bytes")
    response = client.get(f"/v2/my/app/blobs/{digest}", headers=auth)
    assert response.status_code == 200
    assert response.data == b"layer bytes"
    assert response.headers["Docker-Content-Digest"] == digest


def test_head_of_a_missing_blob_is_404_blob_unknown(client, auth, push):
    push.blob("my/app", b"something")
    for name in ("my/app", "no/such/repo"):
        response = client.head(f"/v2/{name}/blobs/{sha256(b'missing')}", headers=auth)
        assert response.status_code == 404
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    body = client.get(f"/v2/my/app/blobs/{sha256(b'missing')}", headers=auth).get_json()
    assert body["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_a_blob_of_another_repository_is_unknown_here(client, auth, push):
    digest = push.blob("other/app", b"not yours")
    push.blob("my/app", b"yours")
    assert client.head(f"/v2/my/app/blobs/{digest}", headers=auth).status_code == 404


def test_deleting_a_blob_unlinks_it_from_the_repository(client, auth, push):
    digest = push.blob("my/app", b"unlink me")
    response = client.delete(f"/v2/my/app/blobs/{digest}", headers=auth)
    assert response.status_code == 202
    assert client.head(f"/v2/my/app/blobs/{digest}", headers=auth).status_code == 404


def test_malformed_digest_is_digest_invalid(client, auth):
    response = client.head("/v2/my/app/blobs/sha256:xyz", headers=auth)
    assert response.status_code == 400
