"""The newer runner's (``run.go``) blob APIs on the admin ``/v2/``: uploads, cancel, mounts, ranges, digests."""
from __future__ import annotations

import pytest

from tests.conformance.suite import EMPTY_JSON, NAME, Registry, code, digest_of, random_blob


# --- run.go (distribution-spec main): blob APIs ----------------------------------------------


def test_blob_post_only_head_get_and_delete_at_once(reg):
    blob = random_blob(512, 10)
    response = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": digest_of(blob)},
                           data=blob, headers={"Content-Type": "application/octet-stream",
                                               "Content-Length": str(len(blob))})
    assert response.status_code == 201 and response.headers["Location"]
    head = reg.blob("HEAD", digest_of(blob))
    assert head.status_code == 200 and head.headers["Content-Length"] == "512" and head.get_data() == b""
    got = reg.blob("GET", digest_of(blob))
    assert got.get_data() == blob and got.headers["Content-Length"] == "512"
    assert got.headers["Docker-Content-Digest"] == digest_of(blob)
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code == 202
    assert reg.blob("HEAD", digest_of(blob)).status_code == 404  # blob-delete finished immediately


def test_blob_chunked_in_several_chunks_and_with_the_last_chunk_in_the_put(reg):
    blob = random_blob(3 * 1000 - 5, 11)
    for put_last_chunk in (False, True):
        location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
        chunks = [blob[i:i + 1000] for i in range(0, len(blob), 1000)]
        sent = 0
        for chunk in chunks[:-1] if put_last_chunk else chunks:
            response = reg.request("PATCH", location, data=chunk, headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                "Content-Range": f"{sent}-{sent + len(chunk) - 1}"})
            assert response.status_code == 202
            sent += len(chunk)
            location = response.headers["Location"]
        last = chunks[-1] if put_last_chunk else b""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(last))}
        if last:
            headers["Content-Range"] = f"{sent}-{len(blob) - 1}"
        done = reg.request("PUT", location, query_string={"digest": digest_of(blob)}, data=last, headers=headers)
        assert done.status_code == 201, done.get_data(as_text=True)
        assert reg.blob("GET", digest_of(blob)).get_data() == blob


def test_blob_post_cancel(reg):
    blob = random_blob(512, 12)
    start = reg.request("POST", "/v2/<name>/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    patched = reg.request("PATCH", location, data=blob[:100], headers={"Content-Type": "application/octet-stream"})
    assert patched.status_code == 202
    cancelled = reg.request("DELETE", location)
    assert cancelled.status_code == 204
    after = reg.request("GET", location)
    assert after.status_code == 404
    assert code(after) == "BLOB_UPLOAD_UNKNOWN"
    put = reg.request("PUT", location, query_string={"digest": digest_of(blob)}, data=blob)
    assert put.status_code == 404 and code(put) == "BLOB_UPLOAD_UNKNOWN"
    assert reg.blob("GET", digest_of(blob)).status_code == 404
    again = reg.request("DELETE", location)
    assert again.status_code == 404 and code(again) == "BLOB_UPLOAD_UNKNOWN"


def test_blob_mount_from_a_repository_anonymous_and_missing(reg, client, auth):
    other = Registry(client, auth, "conformance/repo2")
    for seed, query in ((13, lambda digest: {"mount": digest, "from": other.name}),
                        (14, lambda digest: {"mount": digest})):
        blob = random_blob(512, seed)
        other.push_blob(blob)
        mounted = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string=query(digest_of(blob)))
        assert mounted.status_code == 201 and mounted.headers["Location"]
        assert reg.blob("GET", digest_of(blob)).get_data() == blob
        for holder in (reg, other):
            assert holder.request("DELETE", f"/v2/<name>/blobs/{digest_of(blob)}").status_code == 202
            assert holder.blob("HEAD", digest_of(blob)).status_code == 404
    missing = random_blob(512, 15)
    fallback = reg.request("POST", "/v2/<name>/blobs/uploads/",
                           query_string={"mount": digest_of(missing), "from": other.name})
    assert fallback.status_code == 202  # not mounted: an upload session instead
    assert fallback.headers["Location"].startswith(f"/v2/{NAME}/blobs/uploads/")


def test_blob_range_requests(reg):
    blob = random_blob(2048, 16)
    digest = reg.push_blob(blob)
    cases = {"bytes=500-1499": (500, 1499), "bytes=500-": (500, 2047), "bytes=-500": (1548, 2047),
             "bytes=2000-5000": (2000, 2047)}
    for header, (first, last) in cases.items():
        response = reg.blob("GET", digest, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.get_data() == blob[first:last + 1]
        assert response.headers["Content-Length"] == str(last - first + 1)
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/2048"
        assert response.headers["Docker-Content-Digest"] == digest
    for header in ("bytes=500-0", "bytes=5000-10000"):
        response = reg.blob("GET", digest, headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["Content-Range"] == "bytes */2048"
    assert reg.blob("GET", digest).status_code == 200  # no Range: the whole blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202


@pytest.mark.parametrize("blob", [b"", EMPTY_JSON], ids=["empty", "emptyJSON"])
def test_well_known_blob_contents(reg, blob):
    digest = reg.push_blob(blob)
    head = reg.blob("HEAD", digest)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(blob))
    assert reg.blob("GET", digest).get_data() == blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202
    assert reg.blob("HEAD", digest).status_code == 404


def test_blob_pushes_with_a_bad_digest_are_refused_by_every_api(reg):
    blob = random_blob(2995, 17)
    wrong = digest_of(blob)
    corrupt = blob + b"oh no"
    headers = {"Content-Type": "application/octet-stream"}
    post_only = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": wrong}, data=corrupt,
                            headers=headers)
    assert post_only.status_code == 400 and code(post_only) == "DIGEST_INVALID"
    location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
    post_put = reg.request("PUT", location, query_string={"digest": wrong}, data=corrupt, headers=headers)
    assert post_put.status_code == 400 and code(post_put) == "DIGEST_INVALID"
    location = reg.request("POST", "/v2/<name>/blobs/uploads/").headers["Location"]
    location = reg.request("PATCH", location, data=corrupt, headers=headers).headers["Location"]
    stream = reg.request("PUT", location, query_string={"digest": wrong}, headers=headers)
    assert stream.status_code == 400 and code(stream) == "DIGEST_INVALID"
    assert reg.blob("HEAD", wrong).status_code == 404


def test_blob_sha512(reg):
    blob = random_blob(512, 18)
    digest = digest_of(blob, "sha512")
    response = reg.request("POST", "/v2/<name>/blobs/uploads/", query_string={"digest": digest}, data=blob,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201
    assert reg.blob("GET", digest).get_data() == blob
    assert reg.request("DELETE", f"/v2/<name>/blobs/{digest}").status_code == 202
    assert reg.blob("HEAD", digest).status_code == 404
