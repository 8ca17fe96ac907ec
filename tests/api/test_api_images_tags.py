"""A repository's images and tags: digests, media types, sizes users expect, tags, platforms."""
from __future__ import annotations

from pulp_registry import oci, repositories
from tests.api.helpers import store_image, store_index


def _repo(services, create_repo, name="my/app"):
    created = create_repo(name)
    return repositories.get_repository(services.db, created["id"])


def test_images_list_manifests_newest_first_with_tags_and_total_size(client, auth, services, create_repo):
    repo = _repo(services, create_repo)
    older = store_image(services, repo, "v1", b"first layer")
    newer = store_image(services, repo, "v2", b"second layer, a bit longer", media_type=oci.OCI_MANIFEST)
    store_image(services, repo, "latest", b"second layer, a bit longer", media_type=oci.OCI_MANIFEST)

    response = client.get("/pulp/api/v2/repositories/my-app/images/", headers=auth)
    assert response.status_code == 200
    images = response.get_json()
    assert [image["digest"] for image in images] == [newer.digest, older.digest]
    assert images[0]["media_type"] == oci.OCI_MANIFEST
    assert images[0]["tags"] == ["latest", "v2"]
    assert images[0]["size"] == newer.size
    assert images[0]["platforms"] == []
    assert images[0]["pushed"].endswith("Z")
    assert images[1] == {**images[1], "media_type": oci.DOCKER_MANIFEST, "tags": ["v1"], "size": older.size}


def test_an_index_shows_its_platforms_and_the_size_of_its_children(client, auth, services, create_repo):
    repo = _repo(services, create_repo)
    amd64 = store_image(services, repo, None, b"amd64 layer", oci.OCI_MANIFEST, "amd64")
    arm64 = store_image(services, repo, None, b"arm64 layer", oci.OCI_MANIFEST, "arm64")
    index_digest, index_size = store_index(services, repo, "multi", [(amd64, "amd64"), (arm64, "arm64")])

    images = {image["digest"]: image for image in
              client.get("/pulp/api/v2/repositories/my-app/images/", headers=auth).get_json()}
    index = images[index_digest]
    assert index["media_type"] == oci.OCI_INDEX
    assert index["platforms"] == ["linux/amd64", "linux/arm64"]
    assert index["tags"] == ["multi"]
    assert index["size"] == index_size + amd64.size + arm64.size
    assert images[amd64.digest]["tags"] == []


def test_tags_are_sorted_by_name_with_digest_media_type_and_size(client, auth, services, create_repo):
    repo = _repo(services, create_repo)
    image = store_image(services, repo, "v2", b"layer")
    store_image(services, repo, "latest", b"layer")
    other = store_image(services, repo, "a-first", b"other layer", media_type=oci.OCI_MANIFEST)

    tags = client.get("/pulp/api/v2/repositories/my-app/tags/", headers=auth).get_json()
    assert [tag["name"] for tag in tags] == ["a-first", "latest", "v2"]
    assert tags[1]["manifest_digest"] == image.digest
    assert tags[1]["media_type"] == oci.DOCKER_MANIFEST
    assert tags[1]["size"] == image.size
    assert tags[1]["updated"].endswith("Z")
    assert tags[0]["manifest_digest"] == other.digest and tags[0]["media_type"] == oci.OCI_MANIFEST


def test_one_tag_and_an_unknown_tag(client, auth, services, create_repo):
    repo = _repo(services, create_repo)
    image = store_image(services, repo, "latest", b"layer")
    response = client.get("/pulp/api/v2/repositories/my-app/tags/latest/", headers=auth)
    assert response.status_code == 200
    assert response.get_json()["manifest_digest"] == image.digest
    missing = client.get("/pulp/api/v2/repositories/my-app/tags/nope/", headers=auth)
    assert missing.status_code == 404
    assert "nope" in missing.get_json()["message"]


def test_a_tag_moved_to_another_image_shows_the_new_one(client, auth, services, create_repo):
    repo = _repo(services, create_repo)
    store_image(services, repo, "latest", b"old layer")
    new = store_image(services, repo, "latest", b"new layer")
    tag = client.get("/pulp/api/v2/repositories/my-app/tags/latest/", headers=auth).get_json()
    assert tag["manifest_digest"] == new.digest
    images = client.get("/pulp/api/v2/repositories/my-app/images/", headers=auth).get_json()
    assert [image["tags"] for image in images] == [["latest"], []]


def test_images_and_tags_of_one_repository_do_not_show_another_ones(client, auth, services, create_repo):
    store_image(services, _repo(services, create_repo, "one"), "latest", b"layer of one")
    _repo(services, create_repo, "two")
    assert client.get("/pulp/api/v2/repositories/two/images/", headers=auth).get_json() == []
    assert client.get("/pulp/api/v2/repositories/two/tags/", headers=auth).get_json() == []
    assert len(client.get("/pulp/api/v2/repositories/one/tags/", headers=auth).get_json()) == 1
