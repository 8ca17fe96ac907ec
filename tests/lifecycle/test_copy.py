"""Copy / promote: images, their children, blobs and referrers are associated with the target, tags last."""
from __future__ import annotations

from typing import Any

import pytest

from pulp_registry import promotion, repositories, tasks
from pulp_registry.permissions import READ, UPDATE, grant, repository_resource
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.crane.content import Publisher
from tests.lifecycle.helpers import (COPY, content_file_count, crane_on, held, push_referrer,
                                     push_referrer_image, run_waiting_tasks)


@pytest.fixture
def publisher(services) -> Publisher:
    return Publisher(services)


@pytest.fixture
def dev(services, publisher) -> dict[str, Any]:
    """``dev/app`` with tags 1.2, 1.3, v1.0, v1.1, v2.0; 1.2 is signed."""
    repo = publisher.repository("dev/app")
    images = {tag: publisher.image(repo, tag) for tag in ("1.2", "1.3", "v1.0", "v1.1", "v2.0")}
    signature = push_referrer(services, repo, images["1.2"], b"signature of 1.2")
    other_signature = push_referrer(services, repo, images["1.3"], b"signature of 1.3")
    return {"repo": repo, "images": images, "signature": signature, "other_signature": other_signature}


def copy(client, auth, **body: Any):
    return client.post(COPY, json={"source": "dev/app", "target": "prod/app", **body}, headers=auth)


def copy_task(client, auth, **body: Any) -> dict[str, Any]:
    response = copy(client, auth, **body)
    assert response.status_code == 202, response.get_json()
    [spawned] = response.get_json()["spawned_tasks"]
    task = client.get(spawned["_href"], headers=auth).get_json()
    assert (task["task_type"], task["state"]) == ("copy", "finished"), task
    return task


def prod(services) -> dict[str, Any]:
    repo = repositories.find_repository_by_name(services.db, "prod/app")
    assert repo is not None
    return held(services, repo["_id"])


def test_copy_of_a_tag_creates_the_target_shares_the_content_and_crane_serves_it_after_the_publish(
        client, auth, services, dev):
    image = dev["images"]["1.2"]
    files_before = content_file_count(services)

    task = copy_task(client, auth, tags=["1.2"])

    target = prod(services)
    assert target["tags"] == {"1.2": image.digest}
    assert target["manifests"] == {image.digest, dev["signature"]}
    source_blobs = held(services, dev["repo"]["_id"])["blobs"]
    assert target["blobs"] <= source_blobs and image.config_digest in target["blobs"]
    assert content_file_count(services) == files_before  # associations, no file copied
    result = task["result"]
    assert {key: result[key] for key in ("source", "target", "tags", "manifests", "referrers")} == {
        "source": "dev/app", "target": "prod/app", "tags": ["1.2"], "manifests": 1, "referrers": 1}
    assert result["blobs"] == len(target["blobs"])

    run_waiting_tasks(services)
    publish = services.db.tasks.find_one({"_id": result["publish_task"]})
    assert (publish["task_type"], publish["state"]) == ("publish", "finished")
    assert publish["parent"] == task["task_id"]
    response = crane_on(services).get("/v2/prod/app/manifests/1.2")
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.data == image.raw


def test_copy_by_digest_copies_the_manifest_untagged(client, auth, services, dev):
    image = dev["images"]["1.3"]
    copy_task(client, auth, digests=[image.digest])
    target = prod(services)
    assert target["tags"] == {}
    assert target["manifests"] == {image.digest, dev["other_signature"]}


def test_copy_of_several_tags_and_of_a_tag_pattern(client, auth, services, dev):
    images = dev["images"]
    copy_task(client, auth, tags=["1.2", "1.3"])
    assert prod(services)["tags"] == {"1.2": images["1.2"].digest, "1.3": images["1.3"].digest}

    task = copy_task(client, auth, tag_pattern="v1.*")
    assert task["result"]["tags"] == ["v1.0", "v1.1"]
    assert set(prod(services)["tags"]) == {"1.2", "1.3", "v1.0", "v1.1"}


def test_a_tag_is_renamed_with_target_tag(client, auth, services, dev):
    copy_task(client, auth, tags=["1.2"], target_tag="1.2-prod")
    assert prod(services)["tags"] == {"1.2-prod": dev["images"]["1.2"].digest}
    copy_task(client, auth, digests=[dev["images"]["1.3"].digest], target_tag="1.3-prod")
    assert prod(services)["tags"]["1.3-prod"] == dev["images"]["1.3"].digest


def test_an_index_is_copied_with_its_children_which_stay_untagged(client, auth, services, publisher):
    repo = publisher.repository("dev/app")
    amd64 = publisher.image(repo, None, architecture="amd64")
    arm64 = publisher.image(repo, None, architecture="arm64")
    index = publisher.index(repo, "multi", [(amd64, "amd64"), (arm64, "arm64")])

    task = copy_task(client, auth, tags=["multi"])

    target = prod(services)
    assert target["tags"] == {"multi": index.digest}
    assert target["manifests"] == {index.digest, amd64.digest, arm64.digest}
    assert {amd64.config_digest, arm64.config_digest} <= target["blobs"]
    assert task["result"]["manifests"] == 3
    run_waiting_tasks(services)
    crane = crane_on(services)
    assert crane.get("/v2/prod/app/manifests/multi").headers["Docker-Content-Digest"] == index.digest
    assert crane.get(f"/v2/prod/app/manifests/{arm64.digest}").status_code == 200


@pytest.mark.parametrize("body, status, field, named", [
    ({"source": "no/such"}, 404, None, "no/such"),
    ({"tags": ["1.2", "9.9"]}, 400, "tags", "9.9"),
    ({"digests": ["sha256:" + "0" * 64]}, 400, "digests", "sha256:" + "0" * 64),
    ({"tag_pattern": "v9.*"}, 400, "tag_pattern", "v9.*"),
    ({"tags": ["1.2", "1.3"], "target_tag": "x"}, 400, "target_tag", "target_tag"),
    ({"tag_pattern": "v1.*", "target_tag": "x"}, 400, "target_tag", "target_tag"),
    ({}, 400, "tags", "tags"),
    ({"tags": "1.2"}, 400, "tags", "tags"),
    ({"target": "Not A Name"}, 400, "target", "Not A Name"),
])
def test_invalid_copies_are_refused_and_change_nothing(client, auth, services, dev, body, status, field, named):
    before = {name: list(services.db.database[name].find(projection={"_id": 1}))
              for name in ("repositories", "tags", "repo_manifests", "repo_blobs", "tasks")}
    response = client.post(COPY, json={"source": "dev/app", "target": "prod/app", **body}, headers=auth)
    assert response.status_code == status, response.get_json()
    error = response.get_json()
    assert error.get("field") == field
    assert named in error["message"]
    assert {name: list(services.db.database[name].find(projection={"_id": 1})) for name in before} == before


def test_copy_needs_pull_on_the_source_and_push_on_the_target(client, services, publisher):
    source = publisher.repository("dev/app", protected=True)
    publisher.image(source, "1.2")
    repositories.create_repository(services.db, "prod/app")
    for login in ("reader", "outsider", "promoter"):
        create_user(services.db, login, "lifecycle-pw-42", rounds=4)
    grant(services.db, "user", "reader", repository_resource("dev-app"), [READ])
    grant(services.db, "user", "promoter", repository_resource("dev-app"), [READ])
    grant(services.db, "user", "promoter", repository_resource("prod-app"), [UPDATE])
    body = {"source": "dev/app", "target": "prod/app", "tags": ["1.2"]}

    refused = client.post(COPY, json=body, headers=basic_auth("reader", "lifecycle-pw-42"))
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    hidden = client.post(COPY, json=body, headers=basic_auth("outsider", "lifecycle-pw-42"))
    unknown = client.post(COPY, json={**body, "source": "no/such"}, headers=basic_auth("outsider", "lifecycle-pw-42"))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.get_json()["message"].replace("dev/app", "X") == unknown.get_json()["message"].replace("no/such", "X")
    assert services.db.tasks.count_documents({"task_type": "copy"}) == 0

    allowed = client.post(COPY, json=body, headers=basic_auth("promoter", "lifecycle-pw-42"))
    assert allowed.status_code == 202
    task = services.db.tasks.find_one({"task_type": "copy"})
    assert task["user"] == "promoter" and task["state"] == "finished"


def test_the_copy_writes_blobs_then_manifests_then_referrers_and_tags_last(services, dev):
    target = repositories.create_repository(services.db, "prod/app")
    steps: list[str] = []

    promotion.copy_images(services, lambda report: steps.append(report["step"]),
                          source_repo_id=dev["repo"]["_id"], target_repo_id=target["_id"], tags=["1.2"])

    assert list(dict.fromkeys(steps)) == ["blobs", "manifests", "referrers", "tags"]


def test_a_copy_stopped_at_a_safe_point_leaves_no_tag_naming_a_missing_unit(services, dev):
    target = repositories.create_repository(services.db, "prod/app")

    def stop_at_referrers(report: dict[str, Any]) -> None:
        if report["step"] == "referrers":
            raise tasks.TaskCanceled("canceled")

    with pytest.raises(tasks.TaskCanceled):
        promotion.copy_images(services, stop_at_referrers, source_repo_id=dev["repo"]["_id"],
                              target_repo_id=target["_id"], tags=["1.2", "1.3"])
    assert held(services, target["_id"])["tags"] == {}
    assert held(services, target["_id"])["manifests"] >= {dev["images"]["1.2"].digest}


def test_copying_again_is_harmless(services, dev):
    target = repositories.create_repository(services.db, "prod/app")
    for _ in range(2):
        promotion.copy_images(services, lambda report: None, source_repo_id=dev["repo"]["_id"],
                              target_repo_id=target["_id"], tags=["1.2"])
    assert services.db.repo_manifests.count_documents({"repo_id": target["_id"]}) == 2
    assert services.db.tags.count_documents({"repo_id": target["_id"]}) == 1


@pytest.mark.parametrize("deleting", ["dev-app", "prod-app"])
def test_no_copy_from_or_to_a_repository_being_deleted(client, auth, services, dev, deleting):
    repositories.create_repository(services.db, "prod/app")
    repositories.mark_deleting(services.db, deleting)
    response = copy(client, auth, tags=["1.2"])
    assert response.status_code == 409 and "being deleted" in response.get_json()["message"]
    assert services.db.tasks.count_documents({"task_type": "copy"}) == 0
    with pytest.raises(promotion.CopyError, match="being deleted"):
        promotion.copy_images(services, lambda report: None, source_repo_id="dev-app",
                              target_repo_id="prod-app", tags=["1.2"])


def test_referrers_of_referrers_are_carried_and_those_of_other_images_are_not(client, auth, services, publisher):
    repo = publisher.repository("dev/app")
    image = publisher.image(repo, "1.2")
    other = publisher.image(repo, "1.3")
    sbom = push_referrer_image(services, repo, image, b"sbom of 1.2")
    sbom_signature = push_referrer(services, repo, sbom, b"signature of the sbom")
    push_referrer(services, repo, other, b"signature of 1.3")

    task = copy_task(client, auth, tags=["1.2"])

    assert prod(services)["manifests"] == {image.digest, sbom.digest, sbom_signature}
    assert task["result"]["referrers"] == 2
    run_waiting_tasks(services)
    referrers = crane_on(services).get(f"/v2/prod/app/referrers/{image.digest}")
    assert [entry["digest"] for entry in referrers.get_json()["manifests"]] == [sbom.digest]
