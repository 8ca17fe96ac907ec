"""Manifest PUT for the four media types (and OCI artifacts), GET/HEAD, tags list, publish on push."""
from __future__ import annotations

import json

import pytest

from pulp_registry import content, oci, tasks
from tests.registry.conftest import descriptor, manifest_bytes, sha256

IMAGE_TYPES = [oci.DOCKER_MANIFEST, oci.OCI_MANIFEST]
LIST_TYPES = [(oci.DOCKER_MANIFEST_LIST, oci.DOCKER_MANIFEST), (oci.OCI_INDEX, oci.OCI_MANIFEST)]


def _list_manifest(push, name: str, list_type: str, child_type: str) -> bytes:
    children = []
    for arch in ("amd64", "arm64"):
        digest, raw = push.image(name, child_type, seed=arch.encode())
        children.append({**descriptor(child_type, raw), "platform": {"os": "linux", "architecture": arch}})
    return manifest_bytes({"schemaVersion": 2, "mediaType": list_type, "manifests": children})


def _assert_served(client, auth, name: str, reference: str, raw: bytes, media_type: str) -> None:
    response = client.get(f"/v2/{name}/manifests/{reference}", headers=auth)
    assert response.status_code == 200
    assert response.data == raw
    assert response.headers["Content-Type"] == media_type
    assert response.headers["Docker-Content-Digest"] == sha256(raw)


@pytest.mark.parametrize("media_type", IMAGE_TYPES)
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_image_manifest_put_stores_exact_bytes(client, auth, push, services, media_type, by):
    digest, raw = push.image("my/app", media_type, tag="v1" if by == "tag" else None)
    reference = "v1" if by == "tag" else digest
    _assert_served(client, auth, "my/app", reference, raw, media_type)
    assert services.storage.read(digest) == raw
    doc = services.db.manifests.find_one({"_id": digest})
    assert doc["media_type"] == media_type
    assert len(doc["blob_digests"]) == 2
    association = services.db.repo_manifests.find_one({"repo_id": "my-app", "digest": digest})
    assert association["media_type"] == media_type and association["size"] == len(raw)
    assert services.db.tags.count_documents({"repo_id": "my-app"}) == (1 if by == "tag" else 0)


@pytest.mark.parametrize("list_type,child_type", LIST_TYPES)
@pytest.mark.parametrize("by", ["tag", "digest"])
def test_manifest_list_put_over_pushed_children(client, auth, push, services, list_type, child_type, by):
    raw = _list_manifest(push, "my/app", list_type, child_type)
    reference = "multi" if by == "tag" else sha256(raw)
    response = push.manifest("my/app", reference, raw, list_type)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Location"] == f"/v2/my/app/manifests/{sha256(raw)}"
    assert response.headers["Docker-Content-Digest"] == sha256(raw)
    _assert_served(client, auth, "my/app", reference, raw, list_type)
    children = services.db.manifests.find_one({"_id": sha256(raw)})["children"]
    assert [content.child_platform(child)["architecture"] for child in children] == ["amd64", "arm64"]


def test_put_answers_location_digest_and_the_publish_task(client, auth, push, services):
    push.blob("my/app", b"{}")
    push.blob("my/app", b"layer")
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": descriptor(oci.OCI_CONFIG, b"{}"),
                          "layers": [descriptor(oci.OCI_LAYER, b"layer")]})
    response = push.manifest("my/app", "latest", raw, oci.OCI_MANIFEST)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/my/app/manifests/{sha256(raw)}"
    assert response.headers["Docker-Content-Digest"] == sha256(raw)
    assert "OCI-Subject" not in response.headers
    task_href = response.headers["Pulp-Task"]
    task_id = task_href.rstrip("/").rsplit("/", 1)[1]
    assert task_href == f"/pulp/api/v2/tasks/{task_id}/"
    task = services.db.tasks.find_one({"_id": task_id})
    assert task["task_type"] == "publish"
    assert task["resources"] == [tasks.repository_resource("my-app")]
    assert task["kwargs"]["repo_id"] == "my-app"


def test_a_waiting_publish_is_reused_instead_of_spawning_another(client, auth, push, services):
    push.image("my/app", tag="v1")
    waiting = tasks.create_task(services.db, "publish", [tasks.repository_resource("my-app")],
                                {"repo_id": "my-app"})
    before = services.db.tasks.count_documents({})
    push.blob("my/app", b"{\"v\":2}")
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                          "config": descriptor(oci.OCI_CONFIG, b"{\"v\":2}"), "layers": []})
    response = push.manifest("my/app", "v2", raw, oci.OCI_MANIFEST)
    assert response.status_code == 201
    assert response.headers["Pulp-Task"] == f"/pulp/api/v2/tasks/{waiting['_id']}/"
    assert services.db.tasks.count_documents({}) == before


def test_oci_artifact_with_subject_answers_oci_subject(client, auth, push, services):
    image_digest, _ = push.image("my/app", tag="v1")
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    push.blob("my/app", b"{}")
    push.blob("my/app", sbom)
    raw = manifest_bytes({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "artifactType": "application/spdx+json",
        "config": descriptor(oci.OCI_EMPTY, b"{}"),
        "layers": [descriptor("application/spdx+json", sbom)],
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": image_digest, "size": 1},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "$weird.key": "x"},
    })
    response = push.manifest("my/app", sha256(raw), raw, oci.OCI_MANIFEST)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["OCI-Subject"] == image_digest
    doc = services.db.manifests.find_one({"_id": sha256(raw)})
    assert doc["subject"] == image_digest
    assert doc["artifact_type"] == "application/spdx+json"
    assert json.loads(doc["annotations_json"])["$weird.key"] == "x"
    _assert_served(client, auth, "my/app", sha256(raw), raw, oci.OCI_MANIFEST)


def test_artifact_with_custom_config_type_and_a_subject_not_pushed_yet(client, auth, push):
    config = b'{"helm": "chart"}'
    push.blob("charts/app", config)
    raw = manifest_bytes({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "config": descriptor("application/vnd.cncf.helm.config.v1+json", config), "layers": [],
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": sha256(b"later"), "size": 5},
    })
    response = push.manifest("charts/app", "0.1.0", raw, oci.OCI_MANIFEST)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["OCI-Subject"] == sha256(b"later")


def test_manifest_without_media_type_field_takes_content_type(client, auth, push, services):
    push.blob("my/app", b"{}")
    raw = manifest_bytes({"schemaVersion": 2, "config": descriptor(oci.OCI_CONFIG, b"{}"), "layers": []})
    response = push.manifest("my/app", "bare", raw, oci.OCI_MANIFEST)
    assert response.status_code == 201
    _assert_served(client, auth, "my/app", "bare", raw, oci.OCI_MANIFEST)


def test_head_manifest_gives_length_type_and_digest_without_body(client, auth, push):
    digest, raw = push.image("my/app", oci.DOCKER_MANIFEST, tag="latest")
    response = client.head("/v2/my/app/manifests/latest", headers=auth)
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Content-Length"] == str(len(raw))
    assert response.headers["Content-Type"] == oci.DOCKER_MANIFEST
    assert response.headers["Docker-Content-Digest"] == digest


def test_unknown_manifest_is_404_manifest_unknown(client, auth, push):
    push.image("my/app", tag="latest")
    for path in ("/v2/my/app/manifests/nope", f"/v2/my/app/manifests/{sha256(b'x')}",
                 "/v2/no/repo/manifests/latest"):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert response.get_json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_pushing_a_tag_again_moves_it(client, auth, push, services):
    first, _ = push.image("my/app", seed=b"1", tag="latest")
    second, _ = push.image("my/app", seed=b"2", tag="latest")
    assert first != second
    assert client.head("/v2/my/app/manifests/latest", headers=auth).headers["Docker-Content-Digest"] == second
    assert services.db.tags.count_documents({"repo_id": "my-app"}) == 1
    assert services.db.repo_manifests.count_documents({"repo_id": "my-app"}) == 2


def test_same_manifest_in_two_repositories_is_stored_once(client, auth, push, services):
    first, _ = push.image("one/app", seed=b"same", tag="latest")
    second, _ = push.image("two/app", seed=b"same", tag="latest")
    assert first == second
    assert services.db.manifests.count_documents({"_id": first}) == 1
    assert services.db.repo_manifests.count_documents({"digest": first}) == 2


def test_deleting_a_manifest_removes_it_and_its_tags(client, auth, push):
    digest, _ = push.image("my/app", tag="latest")
    response = client.delete(f"/v2/my/app/manifests/{digest}", headers=auth)
    assert response.status_code == 202
    assert client.head(f"/v2/my/app/manifests/{digest}", headers=auth).status_code == 404
    assert client.get("/v2/my/app/tags/list", headers=auth).get_json()["tags"] == []


def test_tags_list_is_sorted_and_pages_with_link(client, auth, push):
    _, raw = push.image("my/app")
    for tag in ("v2", "latest", "v1", "A"):
        assert push.manifest("my/app", tag, raw, oci.OCI_MANIFEST).status_code == 201
    response = client.get("/v2/my/app/tags/list", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == {"name": "my/app", "tags": ["A", "latest", "v1", "v2"]}
    page = client.get("/v2/my/app/tags/list?n=2", headers=auth)
    assert page.get_json()["tags"] == ["A", "latest"]
    assert page.headers["Link"] == '</v2/my/app/tags/list?last=latest&n=2>; rel="next"'
    rest = client.get("/v2/my/app/tags/list?n=2&last=latest", headers=auth)
    assert rest.get_json()["tags"] == ["v1", "v2"]
    assert "Link" not in rest.headers
    assert client.get("/v2/my/app/tags/list?n=0", headers=auth).get_json()["tags"] == []


def test_tags_list_of_an_unknown_repository_is_name_unknown(client, auth):
    response = client.get("/v2/no/such/tags/list", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["code"] == "NAME_UNKNOWN"
