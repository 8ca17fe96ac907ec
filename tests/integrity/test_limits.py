"""Size limits with clear answers, and upload sessions that only their owner can reach.

``max_blob_size`` and ``storage_quota`` answer 413 in the registry's error form
before anything is stored; ``max_request_body`` answers 413 in the REST API's
form and never applies to pushes.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os

import pytest

from pulp_registry.permissions import SUPER_USERS
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.registry.conftest import sha256, upload_files

OCTET = {"Content-Type": "application/octet-stream"}
STREAMED = {"wsgi.input_terminated": True}  # a chunked body the server de-chunked: no Content-Length


class UnreadableBody(io.RawIOBase):
    """A body of ``length`` bytes that must not be read: the answer comes from the Content-Length alone."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:  # the test client measures the body this way
        self.position = self.length + offset if whence == 2 else offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer) -> int:
        raise AssertionError("the body was read although its Content-Length is over the limit")


def _limits(services, **values) -> None:
    services.settings = dataclasses.replace(services.settings, **values)


def _nothing_stored(services) -> None:
    storage = services.settings.storage_path
    assert [p for p in (services.storage.blobs_dir).rglob("*") if p.is_file()] == [], storage
    assert upload_files(services) == []
    assert list(services.storage.tmp_dir.iterdir()) == []
    for name in ("blobs", "repo_blobs", "uploads", "repositories"):
        assert getattr(services.db, name).count_documents({}) == 0, name


def _error(response) -> dict:
    body = response.get_json()
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    return body["errors"][0]


def _session(client, auth, name="lim/app"):
    response = client.post(f"/v2/{name}/blobs/uploads/", headers=auth)
    assert response.status_code == 202
    return response.headers["Location"]


# --- max_blob_size -------------------------------------------------------------------------


def test_a_monolithic_push_with_a_content_length_over_max_blob_size_is_refused_unread(client, auth, services):
    _limits(services, max_blob_size=4096)
    digest = sha256(b"x" * 5000)
    response = client.post(f"/v2/lim/app/blobs/uploads/?digest={digest}", input_stream=UnreadableBody(5000),
                           headers={**auth, **OCTET})
    assert response.status_code == 413
    error = _error(response)
    assert error["code"] == "SIZE_INVALID"
    assert "at most 4096 bytes" in error["message"]
    _nothing_stored(services)


def test_a_chunk_with_a_content_length_over_max_blob_size_is_refused_unread_and_drops_the_session(
        client, auth, services):
    _limits(services, max_blob_size=4096)
    location = _session(client, auth)
    first = client.patch(location, data=b"a" * 3000, headers={**auth, **OCTET})
    assert first.status_code == 202
    response = client.patch(location, input_stream=UnreadableBody(2000),
                            headers={**auth, **OCTET})
    assert response.status_code == 413
    assert _error(response)["code"] == "SIZE_INVALID"
    _nothing_stored(services)
    assert client.get(location, headers=auth).status_code == 404  # the session is gone


def test_a_streamed_monolithic_push_growing_past_max_blob_size_is_cut_off(client, auth, services):
    _limits(services, max_blob_size=100_000)
    data = os.urandom(300_000)
    response = client.put(f"{_session(client, auth)}?digest={sha256(data)}", input_stream=io.BytesIO(data),
                          headers={**auth, **OCTET}, environ_base=STREAMED)
    assert response.status_code == 413
    assert _error(response)["code"] == "SIZE_INVALID"
    _nothing_stored(services)


def test_a_streamed_post_with_digest_growing_past_max_blob_size_is_cut_off(client, auth, services):
    _limits(services, max_blob_size=100_000)
    data = os.urandom(300_000)
    response = client.post(f"/v2/lim/app/blobs/uploads/?digest={sha256(data)}", input_stream=io.BytesIO(data),
                           headers={**auth, **OCTET}, environ_base=STREAMED)
    assert response.status_code == 413
    assert _error(response)["code"] == "SIZE_INVALID"
    _nothing_stored(services)


def test_streamed_chunks_growing_past_max_blob_size_drop_the_session(client, auth, services):
    _limits(services, max_blob_size=100_000)
    location = _session(client, auth)
    for _ in range(2):
        ok = client.patch(location, input_stream=io.BytesIO(os.urandom(40_000)), headers={**auth, **OCTET},
                          environ_base=STREAMED)
        assert ok.status_code == 202
    response = client.patch(location, input_stream=io.BytesIO(os.urandom(40_000)), headers={**auth, **OCTET},
                            environ_base=STREAMED)
    assert response.status_code == 413
    assert _error(response)["code"] == "SIZE_INVALID"
    _nothing_stored(services)


def test_a_blob_at_max_blob_size_is_kept(client, auth, services):
    _limits(services, max_blob_size=4096)
    data = os.urandom(4096)
    response = client.post(f"/v2/lim/app/blobs/uploads/?digest={sha256(data)}", data=data,
                           headers={**auth, **OCTET})
    assert response.status_code == 201
    assert client.get(f"/v2/lim/app/blobs/{sha256(data)}", headers=auth).data == data


# --- storage_quota -------------------------------------------------------------------------


def test_a_push_over_the_storage_quota_is_denied_and_keeps_nothing(client, auth, services):
    _limits(services, storage_quota=10_000)
    kept = os.urandom(6000)
    assert client.post(f"/v2/lim/app/blobs/uploads/?digest={sha256(kept)}", data=kept,
                       headers={**auth, **OCTET}).status_code == 201
    before = sorted(p for p in services.storage.blobs_dir.rglob("*") if p.is_file())
    too_much = os.urandom(5000)
    refused = client.post(f"/v2/lim/other/blobs/uploads/?digest={sha256(too_much)}", data=too_much,
                          headers={**auth, **OCTET})
    assert refused.status_code == 413
    error = _error(refused)
    assert error["code"] == "DENIED"
    assert "quota" in error["message"] and "4000" in error["message"]
    streamed = client.put(f"{_session(client, auth, 'lim/other')}?digest={sha256(too_much)}",
                          input_stream=io.BytesIO(too_much), headers={**auth, **OCTET}, environ_base=STREAMED)
    assert streamed.status_code == 413 and _error(streamed)["code"] == "DENIED"
    assert sorted(p for p in services.storage.blobs_dir.rglob("*") if p.is_file()) == before
    assert upload_files(services) == []
    assert services.db.blobs.count_documents({}) == 1
    assert services.db.uploads.count_documents({}) == 0
    assert services.db.repositories.find_one({"name": "lim/other"}) is None
    fits = os.urandom(4000)
    assert client.post(f"/v2/lim/other/blobs/uploads/?digest={sha256(fits)}", data=fits,
                       headers={**auth, **OCTET}).status_code == 201


# --- max_request_body ----------------------------------------------------------------------


def test_a_rest_body_over_max_request_body_gets_413_json_and_creates_nothing(client, auth, services):
    _limits(services, max_request_body=1000)
    body = json.dumps({"id": "big", "notes": {"padding": "x" * 2000}})
    response = client.post("/pulp/api/v2/repositories/", data=body,
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.get_json()["http_status"] == 413
    assert "1000 bytes" in response.get_json()["message"]
    streamed = client.post("/pulp/api/v2/repositories/", input_stream=io.BytesIO(body.encode()),
                           headers={**auth, "Content-Type": "application/json"}, environ_base=STREAMED)
    assert streamed.status_code == 413
    assert streamed.get_json()["http_status"] == 413
    assert services.db.repositories.count_documents({}) == 0


def test_the_default_rest_body_limit_is_one_mebibyte(client, auth, services):
    assert services.settings.max_request_body == 1024 * 1024
    body = json.dumps({"id": "big", "notes": {"padding": "x" * (1024 * 1024)}})
    response = client.post("/pulp/api/v2/repositories/", data=body,
                           headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert services.db.repositories.count_documents({}) == 0


def test_pushes_are_not_held_to_max_request_body(client, auth, services):
    _limits(services, max_request_body=1000)
    data = os.urandom(50_000)
    response = client.post(f"/v2/lim/app/blobs/uploads/?digest={sha256(data)}", data=data,
                           headers={**auth, **OCTET})
    assert response.status_code == 201


# --- who may use a session -------------------------------------------------------------------


@pytest.fixture
def other_user_auth(services):
    create_user(services.db, "mallory", "mallory-password", roles=[SUPER_USERS], rounds=4)
    return basic_auth("mallory", "mallory-password")


def test_a_session_is_unknown_to_another_user(client, auth, services, other_user_auth):
    location = _session(client, auth)
    assert client.patch(location, data=b"mine", headers={**auth, **OCTET}).status_code == 202
    for method in ("get", "patch", "put", "delete"):
        response = getattr(client, method)(f"{location}?digest={sha256(b'mine')}", data=b"theirs",
                                           headers={**other_user_auth, **OCTET})
        assert response.status_code == 404, method
        assert _error(response)["code"] == "BLOB_UPLOAD_UNKNOWN"
    done = client.put(f"{location}?digest={sha256(b'mine')}", headers=auth)
    assert done.status_code == 201
    assert client.get(f"/v2/lim/app/blobs/{sha256(b'mine')}", headers=auth).data == b"mine"


def test_a_session_is_unknown_to_another_repository(client, auth, services):
    location = _session(client, auth, "lim/app")
    elsewhere = location.replace("/v2/lim/app/", "/v2/lim/other/")
    response = client.patch(elsewhere, data=b"x", headers={**auth, **OCTET})
    assert response.status_code == 404
    assert _error(response)["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert services.db.uploads.find_one({})["owner"] == "admin"


def test_a_chunk_out_of_order_gets_416_and_changes_nothing(client, auth, services):
    location = _session(client, auth)
    assert client.patch(location, data=b"0123", headers={**auth, **OCTET, "Content-Range": "0-3"}).status_code == 202
    response = client.patch(location, data=b"89", headers={**auth, **OCTET, "Content-Range": "8-9"})
    assert response.status_code == 416
    assert response.headers["Range"] == "0-3"
    assert client.get(location, headers=auth).headers["Range"] == "0-3"
