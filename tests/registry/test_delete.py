"""Removal (``pulp_registry.removal``) and ``DELETE`` over the admin ``/v2/``: what goes, what stays,
and that a removal stopped at any write leaves no broken reference and is finished by running it again."""
from __future__ import annotations

import json
from typing import Any

import pytest

from pulp_registry import history, oci, removal
from pulp_registry.registry_errors import BlobUnknown, ManifestUnknown
from pulp_registry.repositories import find_repository_by_name
from pulp_registry.users import create_user
from tests.conftest import basic_auth
from tests.crane.conftest import CraneUnderTest, error_code
from tests.crane.content import Publisher
from tests.registry.conftest import Pusher, descriptor, manifest_bytes, sha256

NAME = "my/app"
INDEX_TYPES = f"{oci.OCI_INDEX}, {oci.OCI_MANIFEST}"


def push_index(push: Pusher, children: list[tuple[str, bytes]], tag: str | None = None) -> str:
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [
        {"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": len(child_raw),
         "platform": {"os": "linux", "architecture": f"arch{number}"}}
        for number, (digest, child_raw) in enumerate(children)]})
    response = push.manifest(NAME, tag or sha256(raw), raw, oci.OCI_INDEX)
    assert response.status_code == 201, response.get_data(as_text=True)
    return sha256(raw)


def push_referrer(push: Pusher, subject: tuple[str, bytes], artifact_type: str, tag: str | None = None,
                  note: str = "") -> str:
    """An artifact (signature, SBOM) whose ``subject`` is ``subject``."""
    empty = push.blob(NAME, b"{}")
    payload = f"{artifact_type} of {subject[0]} {note}".encode()
    push.blob(NAME, payload)
    raw = manifest_bytes({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": oci.OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [descriptor("application/octet-stream", payload)],
        "subject": {"mediaType": oci.OCI_MANIFEST, "digest": subject[0], "size": len(subject[1])},
        "annotations": {"org.example.note": note or "none"}})
    response = push.manifest(NAME, tag or sha256(raw), raw, oci.OCI_MANIFEST)
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["OCI-Subject"] == subject[0]
    return sha256(raw)


def head_manifest(client, auth, reference: str) -> int:
    return client.head(f"/v2/{NAME}/manifests/{reference}", headers={**auth, "Accept": INDEX_TYPES}).status_code


def tags(client, auth) -> list[str]:
    return client.get(f"/v2/{NAME}/tags/list", headers=auth).get_json()["tags"]


def repo(services) -> dict[str, Any]:
    return find_repository_by_name(services.db, NAME)


def held_manifests(services) -> set[str]:
    return {a["digest"] for a in services.db.repo_manifests.find({"repo_id": repo(services)["_id"]})}


def held_blobs(services) -> set[str]:
    return {a["digest"] for a in services.db.repo_blobs.find({"repo_id": repo(services)["_id"]})}


def assert_no_broken_reference(services) -> None:
    """Every tag names a held manifest; every held manifest's blobs and children are held."""
    db, repo_id = services.db, repo(services)["_id"]
    manifests, blobs = held_manifests(services), held_blobs(services)
    for tag in db.tags.find({"repo_id": repo_id}):
        assert tag["manifest_digest"] in manifests, f"tag {tag['name']} names a manifest not held"
    for digest in manifests:
        unit = db.manifests.find_one({"_id": digest})
        assert set(unit["blob_digests"]) <= blobs, f"{digest} lost a blob"
        assert {child["digest"] for child in unit["children"]} <= manifests, f"{digest} lost a child"


@pytest.fixture
def world(push, client, auth) -> dict[str, Any]:
    """An index of two images (tagged), a third image sharing a layer, referrers, tags on everything."""
    amd, amd_raw = push.image(NAME, seed=b"amd64", tag="amd64")
    arm, arm_raw = push.image(NAME, seed=b"arm64")
    index = push_index(push, [(amd, amd_raw), (arm, arm_raw)], tag="latest")
    assert push.manifest(NAME, "stable", client.get(f"/v2/{NAME}/manifests/latest", headers={
        **auth, "Accept": INDEX_TYPES}).data, oci.OCI_INDEX).status_code == 201
    other, other_raw = push.image(NAME, seed=b"other", tag="other")
    signature = push_referrer(push, (arm, arm_raw), "application/vnd.example.signature", tag="arm-sig")
    sbom = push_referrer(push, (arm, arm_raw), "application/vnd.example.sbom")
    signature_of_sbom = push_referrer(push, (sbom, b"x" * 0), "application/vnd.example.signature", note="sbom")
    other_signature = push_referrer(push, (other, other_raw), "application/vnd.example.signature")
    return {"amd": amd, "arm": arm, "index": index, "other": other, "signature": signature, "sbom": sbom,
            "signature_of_sbom": signature_of_sbom, "other_signature": other_signature}


# --- tags -------------------------------------------------------------------------------


def test_deleting_a_tag_removes_only_the_tag(client, auth, world, services):
    response = client.delete(f"/v2/{NAME}/manifests/stable", headers=auth)
    assert response.status_code == 202
    assert response.get_data() == b""
    assert "stable" not in tags(client, auth)
    assert head_manifest(client, auth, "stable") == 404
    assert head_manifest(client, auth, "latest") == 200
    assert head_manifest(client, auth, world["index"]) == 200
    assert_no_broken_reference(services)


def test_deleting_the_last_tag_of_a_manifest_keeps_the_manifest_by_digest(client, auth, world):
    assert client.delete(f"/v2/{NAME}/manifests/other", headers=auth).status_code == 202
    assert head_manifest(client, auth, "other") == 404
    assert head_manifest(client, auth, world["other"]) == 200


def test_deleting_an_unknown_tag_is_manifest_unknown_and_changes_nothing(client, auth, world, services):
    before = held_manifests(services), tags(client, auth)
    response = client.delete(f"/v2/{NAME}/manifests/nope", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert (held_manifests(services), tags(client, auth)) == before


def test_deleting_from_an_unknown_repository_is_name_unknown(client, auth):
    response = client.delete("/v2/no/such/manifests/latest", headers=auth)
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["code"] == "NAME_UNKNOWN"


# --- manifests ----------------------------------------------------------------------------


def test_deleting_an_index_removes_its_tags_and_the_children_nothing_else_uses(client, auth, world, services):
    response = client.delete(f"/v2/{NAME}/manifests/{world['index']}", headers=auth)
    assert response.status_code == 202
    assert head_manifest(client, auth, world["index"]) == 404
    assert set(tags(client, auth)) == {"amd64", "other"}  # latest and stable named the index
    # amd64 is tagged: it stays; arm64 went with the index, and its referrers with it
    assert head_manifest(client, auth, world["amd"]) == 200
    for gone in ("arm", "signature", "sbom", "signature_of_sbom"):
        assert head_manifest(client, auth, world[gone]) == 404, gone
    assert head_manifest(client, auth, world["other_signature"]) == 200
    assert_no_broken_reference(services)


def test_deleting_a_manifest_removes_its_tags_and_referrers_recursively(client, auth, world, services):
    result = removal.remove_manifest(services, repo(services), world["other"])
    assert result["manifests"] == [world["other"]]
    assert result["referrers"] == [world["other_signature"]]
    assert result["tags"] == ["other"]
    assert head_manifest(client, auth, world["other_signature"]) == 404
    assert head_manifest(client, auth, world["arm"]) == 200 and head_manifest(client, auth, world["signature"]) == 200
    assert_no_broken_reference(services)


def test_a_removed_manifests_blobs_go_unless_another_manifest_needs_them(client, auth, push, services):
    shared = b"shared layer"
    push.blob(NAME, shared)
    digests = []
    for seed in (b"one", b"two"):
        config = json.dumps({"seed": seed.decode()}).encode()
        push.blob(NAME, config)
        raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                              "config": descriptor(oci.OCI_CONFIG, config),
                              "layers": [descriptor(oci.OCI_LAYER_GZIP, shared)]})
        assert push.manifest(NAME, seed.decode(), raw, oci.OCI_MANIFEST).status_code == 201
        digests.append((sha256(raw), sha256(config)))
    assert client.delete(f"/v2/{NAME}/manifests/{digests[0][0]}", headers=auth).status_code == 202
    assert client.head(f"/v2/{NAME}/blobs/{digests[0][1]}", headers=auth).status_code == 404
    assert client.head(f"/v2/{NAME}/blobs/{sha256(shared)}", headers=auth).status_code == 200
    assert_no_broken_reference(services)


def test_a_manifest_an_index_lists_is_hidden_at_once_and_goes_with_the_index(client, auth, world, services):
    response = client.delete(f"/v2/{NAME}/manifests/{world['amd']}", headers=auth)
    assert response.status_code == 202
    assert head_manifest(client, auth, world["amd"]) == 404
    assert "amd64" not in tags(client, auth)
    assert world["amd"] in held_manifests(services)  # the index still needs it
    assert head_manifest(client, auth, world["index"]) == 200
    assert_no_broken_reference(services)
    assert client.delete(f"/v2/{NAME}/manifests/{world['index']}", headers=auth).status_code == 202
    assert world["amd"] not in held_manifests(services)
    assert_no_broken_reference(services)


def test_deleting_twice_answers_not_found_and_changes_nothing(client, auth, world, services):
    assert client.delete(f"/v2/{NAME}/manifests/{world['other']}", headers=auth).status_code == 202
    before = held_manifests(services), held_blobs(services), tags(client, auth)
    again = client.delete(f"/v2/{NAME}/manifests/{world['other']}", headers=auth)
    assert again.status_code == 404
    assert again.get_json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert (held_manifests(services), held_blobs(services), tags(client, auth)) == before


def test_a_push_of_a_removed_manifest_brings_it_back(client, auth, push, services):
    digest, raw = push.image(NAME, seed=b"again", tag="v1")
    assert client.delete(f"/v2/{NAME}/manifests/{digest}", headers=auth).status_code == 202
    push.image(NAME, seed=b"again", tag="v1")
    assert head_manifest(client, auth, "v1") == 200
    assert_no_broken_reference(services)


def test_remove_content_checks_everything_before_removing_anything(world, services, client, auth):
    before = held_manifests(services), tags(client, auth)
    with pytest.raises(ManifestUnknown):
        removal.remove_content(services, repo(services), tags=["other"], digests=["sha256:" + "0" * 64])
    assert (held_manifests(services), tags(client, auth)) == before


def test_removals_are_recorded_in_the_history(world, services):
    removal.remove_content(services, repo(services), tags=["stable"], digests=[world["other"]])
    event = history.list_history(services.db, repo(services)["_id"], action="remove")[0]
    assert event["details"]["tags"] == ["stable", "other"]
    assert event["details"]["manifests"] == [world["other"]]
    pushes = history.list_history(services.db, repo(services)["_id"], action="push")
    assert {"reference": "other", "digest": world["other"], "media_type": oci.OCI_MANIFEST} in [
        event["details"] for event in pushes]


def test_deleting_needs_the_delete_permission(client, services, world):
    from pulp_registry import permissions, roles

    roles.create_role(services.db, "pushers")
    permissions.grant(services.db, permissions.ROLE, "pushers", f"/pulp/api/v2/repositories/{repo(services)['_id']}/",
                      ["READ", "UPDATE"])
    create_user(services.db, "pusher", "pusher-password", roles=["pushers"], rounds=4)
    pusher = basic_auth("pusher", "pusher-password")
    for path in (f"/v2/{NAME}/manifests/latest", f"/v2/{NAME}/manifests/{world['other']}",
                 f"/v2/{NAME}/blobs/{sha256(b'{}')}"):
        refused = client.delete(path, headers=pusher)
        assert refused.status_code == 401, path
        assert 'scope="repository:my/app:delete"' in refused.headers["WWW-Authenticate"]
        assert refused.get_json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert head_manifest(client, pusher, "latest") == 200


# --- blobs --------------------------------------------------------------------------------


def test_deleting_a_blob_no_manifest_uses_unlinks_it(client, auth, push, services):
    digest = push.blob(NAME, b"loose blob")
    assert client.delete(f"/v2/{NAME}/blobs/{digest}", headers=auth).status_code == 202
    assert client.get(f"/v2/{NAME}/blobs/{digest}", headers=auth).status_code == 404
    assert digest not in held_blobs(services)
    assert services.storage.exists(digest)  # the file waits for orphan clean-up
    again = client.delete(f"/v2/{NAME}/blobs/{digest}", headers=auth)
    assert again.status_code == 404
    assert again.get_json()["errors"][0]["code"] == "BLOB_UNKNOWN"


def test_a_blob_a_manifest_needs_is_hidden_and_goes_with_the_manifest(client, auth, world, services):
    layer = services.db.manifests.find_one({"_id": world["other"]})["blob_digests"][1]
    assert client.delete(f"/v2/{NAME}/blobs/{layer}", headers=auth).status_code == 202
    assert client.head(f"/v2/{NAME}/blobs/{layer}", headers=auth).status_code == 404
    assert head_manifest(client, auth, world["other"]) == 200
    assert_no_broken_reference(services)  # still associated: the manifest needs it
    removal.remove_manifest(services, repo(services), world["other"])
    assert layer not in held_blobs(services)
    assert_no_broken_reference(services)


def test_unlink_blob_of_an_unknown_blob_is_blob_unknown(services, world):
    with pytest.raises(BlobUnknown):
        removal.unlink_blob(services, repo(services), "sha256:" + "0" * 64)


# --- restartable: stop at every write, run again ------------------------------------------


class Crash(Exception):
    pass


class CrashingCollection:
    """A collection whose n-th write (counted across the collections sharing ``counter``) raises."""

    def __init__(self, real: Any, counter: dict[str, int]) -> None:
        self._real, self._counter = real, counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name not in ("update_one", "delete_one", "find_one_and_delete", "insert_one", "update_many",
                        "delete_many"):
            return attribute

        def write(*args: Any, **kwargs: Any) -> Any:
            self._counter["writes"] += 1
            if self._counter["writes"] == self._counter["crash_at"]:
                raise Crash(f"stopped before write {self._counter['writes']}")
            return attribute(*args, **kwargs)
        return write


def _state(services) -> tuple[set[str], set[str], dict[str, str]]:
    tags_now = {tag["name"]: tag["manifest_digest"] for tag in services.db.tags.find({"repo_id": repo(services)["_id"]})}
    return held_manifests(services), held_blobs(services), tags_now


def _remove_everything_asked(services, world) -> None:
    """One removal (the unit ``registry-admin remove NAME@DIGEST`` runs): the index, its tags, its
    untagged child with the child's referrers and blobs."""
    removal.remove_manifest(services, repo(services), world["index"])


def test_a_removal_stopped_at_any_write_leaves_no_broken_reference_and_a_rerun_finishes_it(
        push, client, auth, services, monkeypatch):
    reference = None
    crash_at = 1
    while True:
        # a fresh repository each round: the same content, so the expected end state is the same
        services.db.tags.delete_many({})
        services.db.repo_manifests.delete_many({})
        services.db.repo_blobs.delete_many({})
        world = _world_again(push, client, auth)
        counter = {"writes": 0, "crash_at": crash_at}
        real = {name: getattr(services.db, name) for name in ("tags", "repo_manifests", "repo_blobs")}
        for name, collection in real.items():
            monkeypatch.setattr(services.db, name, CrashingCollection(collection, counter))
        try:
            _remove_everything_asked(services, world)
            crashed = False
        except Crash:
            crashed = True
        for name, collection in real.items():
            monkeypatch.setattr(services.db, name, collection)
        assert_no_broken_reference(services)
        if not crashed:
            break
        try:
            _remove_everything_asked(services, world)  # run it again
        except ManifestUnknown:
            pass  # the index itself was gone already: the rest was finished all the same
        assert_no_broken_reference(services)
        state = _state(services)
        if reference is None:
            reference = state
        assert state == reference, f"stopped at write {crash_at}"
        crash_at += 1
    assert crash_at > 10  # the removal was stopped at each of its writes
    assert _state(services) == reference


def _world_again(push: Pusher, client, auth) -> dict[str, Any]:
    amd, amd_raw = push.image(NAME, seed=b"amd64", tag="amd64")
    arm, arm_raw = push.image(NAME, seed=b"arm64")
    index = push_index(push, [(amd, amd_raw), (arm, arm_raw)], tag="latest")
    push_index(push, [(amd, amd_raw), (arm, arm_raw)], tag="stable")
    other, other_raw = push.image(NAME, seed=b"other", tag="other")
    push_referrer(push, (arm, arm_raw), "application/vnd.example.signature", tag="arm-sig")
    push_referrer(push, (other, other_raw), "application/vnd.example.signature")
    return {"index": index, "other": other}


# --- Crane serves what was published after the removal -------------------------------------


def test_crane_stops_serving_what_was_removed_once_published(client, auth, push, services):
    publisher = Publisher(services)
    kept, _ = push.image(NAME, seed=b"kept", tag="kept")
    gone, _ = push.image(NAME, seed=b"gone", tag="gone")
    untagged, _ = push.image(NAME, seed=b"untag", tag="untag")
    publisher.publish(repo(services))
    crane = CraneUnderTest(publisher.published_dir)
    for reference in ("kept", "gone", "untag", gone):
        assert crane.get(f"/v2/{NAME}/manifests/{reference}").status_code == 200, reference
    assert client.delete(f"/v2/{NAME}/manifests/{gone}", headers=auth).status_code == 202
    assert client.delete(f"/v2/{NAME}/manifests/untag", headers=auth).status_code == 202
    publisher.publish(repo(services))
    crane.tick()
    for reference in ("gone", gone, "untag"):
        response = crane.get(f"/v2/{NAME}/manifests/{reference}")
        assert response.status_code == 404, reference
        assert error_code(response) == "MANIFEST_UNKNOWN"
    assert crane.get(f"/v2/{NAME}/manifests/kept").status_code == 200
    assert crane.get(f"/v2/{NAME}/manifests/{untagged}").status_code == 200
    assert crane.get(f"/v2/{NAME}/tags/list").get_json()["tags"] == ["kept"]
