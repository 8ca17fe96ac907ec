"""A publish checks its version by Crane's rules before switching to it (issue 8, point 4)."""
from __future__ import annotations

import json
import os

import pytest

from crane.published import parse_repository
from pulp_registry import published_format as fmt
from pulp_registry.publish import PublishError, publish_repository
from tests.crane.conftest import CraneUnderTest
from tests.crane.content import Publisher
from tests.integrity.served import served_tags

MISSING = "sha256:" + "0" * 64


def live_version(publisher: Publisher, name: str) -> str:
    return os.readlink(fmt.repository_dir(publisher.published_dir, name) / fmt.CURRENT_LINK).split("/")[-1]


@pytest.fixture
def published(services):
    publisher = Publisher(services)
    repo = publisher.repository("my/app")
    image = publisher.image(repo, "latest", layers=[b"one", b"two"])
    first = publish_repository(services, repo["_id"])
    crane = CraneUnderTest(publisher.published_dir)
    assert crane.get("/v2/my/app/manifests/latest").status_code == 200
    return publisher, repo, image, first, crane


def assert_not_switched(publisher, first, crane, image) -> None:
    assert live_version(publisher, "my/app") == first["version"]
    versions = sorted(p.name for p in (fmt.repository_dir(publisher.published_dir, "my/app") / "versions").iterdir())
    assert versions == [first["version"]]
    crane.tick()
    assert served_tags(crane, "my/app") == {"latest": image.digest}
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw


def test_a_tag_pointing_at_a_manifest_that_does_not_exist_fails_the_publish_and_keeps_the_live_version(published):
    publisher, repo, image, first, crane = published
    publisher.services.db.tags.insert_one({"repo_id": repo["_id"], "name": "dangling", "manifest_digest": MISSING})
    with pytest.raises(PublishError, match=f"tag 'dangling' points at {MISSING}, which is not in manifests"):
        publish_repository(publisher.services, repo["_id"])
    assert_not_switched(publisher, first, crane, image)


def test_a_manifest_whose_layer_is_gone_fails_the_publish_and_keeps_the_live_version(published):
    publisher, repo, image, first, crane = published
    layer_digest = image.layers[1][0]
    db = publisher.services.db
    db.repo_blobs.delete_one({"repo_id": repo["_id"], "digest": layer_digest})
    db.blobs.delete_one({"_id": layer_digest})
    with pytest.raises(PublishError, match=f"needs blob {layer_digest}, which is not in blobs"):
        publish_repository(publisher.services, repo["_id"])
    assert_not_switched(publisher, first, crane, image)


def test_a_tagged_manifest_without_its_association_is_published_from_its_unit(published):
    publisher, repo, image, first, crane = published
    publisher.services.db.repo_manifests.delete_one({"repo_id": repo["_id"], "digest": image.digest})
    result = publish_repository(publisher.services, repo["_id"])
    crane.tick()
    assert result["version"] == live_version(publisher, "my/app") != first["version"]
    assert crane.get("/v2/my/app/manifests/latest").data == image.raw


def test_crane_refuses_an_index_whose_child_is_not_listed_by_the_same_rule(published):
    publisher, repo, image, first, crane = published
    arm = publisher.image(repo, None, architecture="arm64")
    index = publisher.index(repo, "multi", [(image, "amd64"), (arm, "arm64")])
    publish_repository(publisher.services, repo["_id"])
    document = json.loads((fmt.repository_dir(publisher.published_dir, "my/app") / "current" /
                           fmt.REPOSITORY_JSON).read_text())
    parse_repository(document, "ok")
    del document["manifests"][arm.digest]
    problem = f"manifest {index.digest} lists child {arm.digest}, which is not in manifests"
    assert fmt.repository_problems(document) == [problem]
    with pytest.raises(ValueError, match=problem):
        parse_repository(document, "broken")


def test_a_layer_known_but_missing_from_storage_fails_the_publish_and_keeps_the_live_version(published):
    publisher, repo, image, first, crane = published
    layer_digest = image.layers[0][0]
    publisher.services.db.repo_blobs.delete_one({"repo_id": repo["_id"], "digest": layer_digest})
    publisher.services.storage.delete(layer_digest)
    fmt.blob_path(publisher.published_dir, layer_digest).unlink()
    with pytest.raises(PublishError, match=f"needs blob {layer_digest}, which is not in blobs"):
        publish_repository(publisher.services, repo["_id"])
    assert live_version(publisher, "my/app") == first["version"]
