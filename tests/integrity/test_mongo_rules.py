"""MongoDB's rules hold in every test: the checking client refuses what MongoDB refuses.

The first tests prove the checker itself (``tests/mongo_rules.py``) catches each
rule; the others push what users push (an OCI index whose platforms carry
``os.version``, or a hostile ``$where``) through the real endpoints, on the
checking client the ``services`` fixture builds.
"""
from __future__ import annotations

import json

import pytest
from pymongo import InsertOne, UpdateOne

from pulp_registry import content, oci, repositories
from pulp_registry.db import utcnow
from pulp_registry.publish import repository_document
from tests.mongo_rules import MAX_ARRAY_LENGTH, CheckingClient, MongoRuleViolation
from tests.registry.conftest import Pusher, descriptor, manifest_bytes, sha256


@pytest.fixture
def collection():
    return CheckingClient()["registry"]["things"]


@pytest.fixture
def push(client, auth) -> Pusher:
    return Pusher(client, auth)


# --- the checker ---------------------------------------------------------------------


@pytest.mark.parametrize("bad_key", ["os.version", "$where", "a\x00b"])
def test_mongo_checker_refuses_a_stored_key_with_a_dot_or_a_dollar(collection, bad_key):
    with pytest.raises(MongoRuleViolation, match="insert_one on collection 'things'") as refused:
        collection.insert_one({"_id": 1, "platform": {bad_key: "x"}})
    assert repr(bad_key)[1:-1] in str(refused.value) or bad_key in str(refused.value)
    with pytest.raises(MongoRuleViolation, match="update_one"):
        collection.update_one({"_id": 2}, {"$set": {"platform": {bad_key: "x"}}}, upsert=True)
    with pytest.raises(MongoRuleViolation, match="find_one_and_update"):
        collection.find_one_and_update({"_id": 3}, {"$setOnInsert": {"list": [{bad_key: 1}]}}, upsert=True)
    with pytest.raises(MongoRuleViolation, match="replace_one"):
        collection.replace_one({"_id": 4}, {"nested": {"deeper": {bad_key: 1}}}, upsert=True)
    with pytest.raises(MongoRuleViolation, match="insert_many"):
        collection.insert_many([{"_id": 5}, {"_id": 6, bad_key: 1}])
    with pytest.raises(MongoRuleViolation, match="update_many"):
        collection.update_many({}, {"$push": {"list": {bad_key: 1}}})
    with pytest.raises(MongoRuleViolation, match="bulk_write"):
        collection.bulk_write([InsertOne({"_id": 7}), UpdateOne({"_id": 7}, {"$set": {"p": {bad_key: 1}}})])


def test_mongo_checker_refuses_user_keys_stored_through_an_upsert_filter(collection):
    with pytest.raises(MongoRuleViolation, match="upsert filter.*os.version"):
        collection.update_one({"platform": {"os.version": "10"}}, {"$set": {"seen": True}}, upsert=True)


def test_mongo_checker_allows_operators_and_field_paths(collection):
    collection.insert_one({"_id": 1, "progress": {}, "list": [1, 2], "notes": [["os.version", "$x"]]})
    collection.update_one({"_id": 1, "list": {"$in": [1]}},
                          {"$set": {"progress.blobs": {"done": 1}, "list.0": 5}, "$inc": {"count": 1},
                           "$unset": {"gone": ""}, "$push": {"list": {"$each": [3, 4]}}})
    collection.update_one({"_id": 2, "kind": {"$in": ["a"]}}, {"$setOnInsert": {"created": utcnow()}}, upsert=True)
    assert collection.find_one({"_id": 1})["progress"] == {"blobs": {"done": 1}}
    assert collection.find_one({"_id": 2}) is not None


def test_mongo_checker_refuses_an_operator_path_with_a_dollar_part(collection):
    collection.insert_one({"_id": 1})
    with pytest.raises(MongoRuleViolation, match="starting with"):
        collection.update_one({"_id": 1}, {"$set": {"a.$where": 1}})


def test_mongo_checker_refuses_a_document_over_16_mib(collection):
    with pytest.raises(MongoRuleViolation, match="bytes of BSON"):
        collection.insert_one({"_id": 1, "blob": "x" * (16 * 1024 * 1024)})
    collection.insert_one({"_id": 2, "blob": "x" * (9 * 1024 * 1024)})
    with pytest.raises(MongoRuleViolation, match="update_one.*bytes of BSON"):
        collection.update_one({"_id": 2}, {"$set": {"more": "y" * (9 * 1024 * 1024)}})


def test_mongo_checker_refuses_an_array_that_grows_with_use(collection):
    collection.insert_one({"_id": 1, "members": list(range(MAX_ARRAY_LENGTH))})
    with pytest.raises(MongoRuleViolation, match="members.*grows with use"):
        collection.update_one({"_id": 1}, {"$push": {"members": "one too many"}})
    with pytest.raises(MongoRuleViolation, match="insert_one.*grows with use"):
        collection.insert_one({"_id": 2, "nested": {"tags": ["t"] * (MAX_ARRAY_LENGTH + 1)}})


def test_mongo_checker_is_what_every_test_writes_through(services):
    with pytest.raises(MongoRuleViolation, match="'repositories'"):
        services.db.repositories.update_one({"_id": "x"}, {"$set": {"labels": {"$where": "1"}}}, upsert=True)


# --- user keys are never field names ---------------------------------------------------------


HOSTILE_PLATFORMS = [
    {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1234"},
    {"os": "linux", "architecture": "arm64", "variant": "v8", "$where": "sleep(1000)", "os.features": ["sse4"]},
]


def _index_with_platforms(push: Pusher, name: str, platforms: list[dict]) -> bytes:
    children = []
    for number, platform in enumerate(platforms):
        _digest, raw = push.image(name, oci.OCI_MANIFEST, seed=str(number).encode())
        children.append({**descriptor(oci.OCI_MANIFEST, raw), "platform": platform})
    return manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": children})


def test_mongo_an_index_whose_platforms_have_dotted_and_dollar_keys_is_stored_and_read_back(push, services):
    raw = _index_with_platforms(push, "win/app", HOSTILE_PLATFORMS)

    response = push.manifest("win/app", "multi", raw, oci.OCI_INDEX)

    assert response.status_code == 201, response.get_data(as_text=True)
    doc = services.db.manifests.find_one({"_id": sha256(raw)})
    assert [content.child_platform(child) for child in doc["children"]] == HOSTILE_PLATFORMS
    repo = repositories.find_repository_by_name(services.db, "win/app")
    images = {image["digest"]: image for image in repositories.list_images(services.db, repo["_id"])}
    assert images[sha256(raw)]["platforms"] == ["windows/amd64", "linux/arm64/v8"]


def test_mongo_the_published_platforms_are_the_objects_the_pusher_sent(push, services):
    raw = _index_with_platforms(push, "win/app", HOSTILE_PLATFORMS)
    assert push.manifest("win/app", "multi", raw, oci.OCI_INDEX).status_code == 201
    repo = repositories.find_repository_by_name(services.db, "win/app")

    document, _unassociated = repository_document(services.db, repo, utcnow())

    published = json.loads(json.dumps(document))["manifests"][sha256(raw)]["platforms"]
    children = json.loads(raw)["manifests"]
    assert published == [{"digest": child["digest"], "platform": child["platform"]} for child in children]


def test_mongo_a_manifest_list_child_without_platform_reads_as_none(push, services):
    _digest, child_raw = push.image("my/app", oci.OCI_MANIFEST)
    raw = manifest_bytes({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                          "manifests": [descriptor(oci.OCI_MANIFEST, child_raw)]})
    assert push.manifest("my/app", "multi", raw, oci.OCI_INDEX).status_code == 201
    [child] = services.db.manifests.find_one({"_id": sha256(raw)})["children"]
    assert content.child_platform(child) is None


def test_mongo_notes_with_dotted_and_dollar_keys_are_pairs_not_field_names(services):
    notes = {"team.owner": "a", "$where": "b"}
    repo = repositories.create_repository(services.db, "my/app", notes=notes)
    updated, _ = repositories.update_repository(services.db, repo["_id"], {"notes": {"build.id": "7", "$where": None}})
    assert repositories.repository_json(updated)["notes"] == {"team.owner": "a", "build.id": "7"}


def test_mongo_a_repository_keeps_a_bounded_number_of_notes(services):
    repo = repositories.create_repository(services.db, "my/app")
    with pytest.raises(repositories.RepositoryError, match="at most"):
        repositories.update_repository(services.db, repo["_id"], {
            "notes": {f"key-{number}": "v" for number in range(repositories.MAX_NOTES + 1)}})
