"""Blob uploads: monolithic, chunked, streamed, status, cancel and cross-repository mount."""
from __future__ import annotations

import io
import os

from tests.registry.conftest import sha256, upload_files

OCTET = {"Content-Type": "application/octet-stream"}


def _start(client, auth, name="my/app"):
    response = client.post(f"/v2/{name}/blobs/uploads/", headers=auth)
    assert response.status_code == 202
    return response


def _blob(client, auth, name, digest):
    return client.get(f"/v2/{name}/blobs/{digest}", headers=auth)


def test_post_starts_a_session_without_creating_the_repository(client, auth, services):
    response = _start(client, auth)
    upload_id = response.headers["Docker-Upload-UUID"]
    assert response.headers["Location"] == f"/v2/my/app/blobs/uploads/{upload_id}"
    assert response.headers["Range"] == "0-0"
    assert response.headers["Content-Length"] == "0"
    assert services.db.uploads.find_one({"_id": upload_id})["repo_name"] == "my/app"
    assert services.db.repositories.count_documents({}) == 0


def test_monolithic_upload_post_then_put_keeps_the_blob_and_creates_the_repository(client, auth, services):
    data = os.urandom(3000)
    digest = sha256(data)
    location = _start(client, auth).headers["Location"]
    response = client.put(f"{location}?digest={digest}", data=data, headers={**auth, **OCTET})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/my/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert _blob(client, auth, "my/app", digest).data == data
    repo = services.db.repositories.find_one({"name": "my/app"})
    assert repo["_id"] == "my-app"
    assert services.db.repo_blobs.find_one({"repo_id": "my-app", "digest": digest})["size"] == 3000
    assert services.db.blobs.find_one({"_id": digest})["size"] == 3000
    assert services.db.uploads.count_documents({}) == 0
    assert upload_files(services) == []


def test_single_post_with_digest_uploads_the_whole_blob(client, auth, services):
    data = b"one request is enough"
    digest = sha256(data)
    response = client.post(f"/v2/my/app/blobs/uploads/?digest={digest}", data=data, headers={**auth, **OCTET})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/my/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert _blob(client, auth, "my/app", digest).data == data


def test_chunked_upload_with_content_range_reports_progress(client, auth):
    data = os.urandom(25)
    location = _start(client, auth).headers["Location"]
    first = client.patch(location, data=data[:10], headers={**auth, **OCTET, "Content-Range": "0-9"})
    assert first.status_code == 202
    assert first.headers["Range"] == "0-9"
    assert first.headers["Location"] == location
    assert first.headers["Docker-Upload-UUID"] == location.rsplit("/", 1)[1]
    second = client.patch(first.headers["Location"], data=data[10:20],
                          headers={**auth, **OCTET, "Content-Range": "10-19"})
    assert second.status_code == 202
    assert second.headers["Range"] == "0-19"
    final = client.put(f"{second.headers['Location']}?digest={sha256(data)}", data=data[20:],
                       headers={**auth, **OCTET, "Content-Range": "20-24"})
    assert final.status_code == 201
    assert _blob(client, auth, "my/app", sha256(data)).data == data


def test_out_of_order_chunk_gets_416_with_the_current_range_and_the_upload_goes_on(client, auth):
    data = os.urandom(20)
    location = _start(client, auth).headers["Location"]
    client.patch(location, data=data[:10], headers={**auth, **OCTET, "Content-Range": "0-9"})
    skipped = client.patch(location, data=data[15:], headers={**auth, **OCTET, "Content-Range": "15-19"})
    assert skipped.status_code == 416
    assert skipped.headers["Range"] == "0-9"
    assert skipped.headers["Location"] == location
    assert skipped.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    garbled = client.patch(location, data=data[10:], headers={**auth, **OCTET, "Content-Range": "ten-twenty"})
    assert garbled.status_code == 416
    status = client.get(location, headers=auth)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-9"
    resumed = client.patch(location, data=data[10:], headers={**auth, **OCTET, "Content-Range": "10-19"})
    assert resumed.headers["Range"] == "0-19"
    done = client.put(f"{location}?digest={sha256(data)}", headers=auth)
    assert done.status_code == 201
    assert _blob(client, auth, "my/app", sha256(data)).data == data


def test_streamed_patch_without_content_range_or_length_is_appended(client, auth):
    """docker and skopeo send the whole blob in one PATCH, chunked, with no Content-Range."""
    data = os.urandom(70000)
    location = _start(client, auth).headers["Location"]
    streamed = client.patch(location, headers={**auth, **OCTET, "Transfer-Encoding": "chunked"},
                            environ_overrides={"wsgi.input": io.BytesIO(data), "wsgi.input_terminated": True})
    assert streamed.status_code == 202
    assert streamed.headers["Range"] == f"0-{len(data) - 1}"
    done = client.put(f"{streamed.headers['Location']}?digest={sha256(data)}", headers=auth)
    assert done.status_code == 201
    assert _blob(client, auth, "my/app", sha256(data)).data == data


def test_status_of_a_session_is_204_with_its_range(client, auth):
    location = _start(client, auth).headers["Location"]
    assert client.get(location, headers=auth).headers["Range"] == "0-0"
    client.patch(location, data=b"abc", headers={**auth, **OCTET})
    status = client.get(location, headers=auth)
    assert status.status_code == 204
    assert status.headers["Range"] == "0-2"
    assert status.headers["Location"] == location


def test_cancel_drops_the_session_and_its_bytes(client, auth, services):
    location = _start(client, auth).headers["Location"]
    client.patch(location, data=b"abandoned", headers={**auth, **OCTET})
    assert client.delete(location, headers=auth).status_code == 204
    gone = client.get(location, headers=auth)
    assert gone.status_code == 404
    assert gone.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert services.db.uploads.count_documents({}) == 0
    assert upload_files(services) == []
    assert services.db.repositories.count_documents({}) == 0


def test_unknown_session_and_a_session_of_another_repository_are_unknown(client, auth):
    missing = client.patch("/v2/my/app/blobs/uploads/3f1c2a40-0000-4000-8000-000000000000", data=b"x",
                           headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    not_a_uuid = client.get("/v2/my/app/blobs/uploads/not-a-uuid", headers=auth)
    assert not_a_uuid.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    upload_id = _start(client, auth, "my/app").headers["Docker-Upload-UUID"]
    other = client.get(f"/v2/other/app/blobs/uploads/{upload_id}", headers=auth)
    assert other.status_code == 404
    assert other.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_finish_without_digest_is_refused_and_the_session_stays(client, auth):
    location = _start(client, auth).headers["Location"]
    response = client.put(location, data=b"abc", headers=auth)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert client.get(location, headers=auth).status_code == 204


def test_mount_from_another_repository_shares_the_blob(client, auth, push, services):
    digest = push.blob("source/app", b"shared layer")
    response = client.post(f"/v2/target/app/blobs/uploads/?mount={digest}&from=source/app", headers=auth)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/target/app/blobs/{digest}"
    assert response.headers["Docker-Content-Digest"] == digest
    assert _blob(client, auth, "target/app", digest).data == b"shared layer"
    assert services.db.repo_blobs.count_documents({"digest": digest}) == 2
    assert services.db.blobs.count_documents({"_id": digest}) == 1
    assert services.db.uploads.count_documents({}) == 0


def test_mount_without_from_reuses_a_blob_any_repository_holds(client, auth, push, services):
    digest = push.blob("source/app", b"layer the registry already has")
    response = client.post(f"/v2/target/app/blobs/uploads/?mount={digest}", headers=auth)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/target/app/blobs/{digest}"
    assert _blob(client, auth, "target/app", digest).data == b"layer the registry already has"
    assert services.db.uploads.count_documents({}) == 0
    unknown = client.post(f"/v2/target/app/blobs/uploads/?mount={sha256(b'nowhere')}", headers=auth)
    assert unknown.status_code == 202


def test_mount_of_a_blob_the_source_lacks_falls_back_to_an_upload_session(client, auth, push, services):
    push.blob("source/app", b"something else")
    missing = sha256(b"never pushed")
    response = client.post(f"/v2/target/app/blobs/uploads/?mount={missing}&from=source/app", headers=auth)
    assert response.status_code == 202
    assert "/v2/target/app/blobs/uploads/" in response.headers["Location"]
    no_source = client.post(f"/v2/target/app/blobs/uploads/?mount={missing}&from=no/such/repo", headers=auth)
    assert no_source.status_code == 202
    assert services.db.repositories.find_one({"name": "target/app"}) is None
