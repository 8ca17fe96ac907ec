"""The test MongoDB server: real pymongo clients, in this and other processes, see one mongomock database."""
from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pymongo
import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from pulp_registry.config import Settings
from pulp_registry.db import INDEXES, Collections, connect
from pulp_registry.tasks import create_unless_pending
from tests.mongo_server import MongoWireServer
from tests.servers import poll

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[MongoWireServer]:
    with MongoWireServer() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: MongoWireServer) -> Iterator[pymongo.MongoClient]:
    with pymongo.MongoClient(server.url, tz_aware=True, serverSelectionTimeoutMS=5000) as mongo:
        yield mongo


@pytest.fixture
def db(client: pymongo.MongoClient) -> Database:
    """A database of its own for each test, on the module's server."""
    return client[f"test_{next(_names)}"]


@pytest.fixture
def things(db: Database) -> Collection:
    db.things.insert_many([{"_id": i, "n": i, "group": "even" if i % 2 == 0 else "odd", "extra": "x"}
                           for i in range(10)])
    return db.things


def run_python(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_url_and_ping(server: MongoWireServer, client: pymongo.MongoClient) -> None:
    assert server.url == f"mongodb://127.0.0.1:{server.port}/?directConnection=true"
    assert client.admin.command("ping")["ok"] == 1
    assert client.server_info()["version"]


def test_find_sort_skip_limit_projection(things: Collection) -> None:
    found = list(things.find({"n": {"$gte": 2}}, {"extra": 0}).sort("n", DESCENDING).skip(1).limit(3))
    assert found == [{"_id": 8, "n": 8, "group": "even"}, {"_id": 7, "n": 7, "group": "odd"},
                     {"_id": 6, "n": 6, "group": "even"}]
    assert things.find_one({"group": "odd"}, {"n": 1, "_id": 0}, sort=[("n", ASCENDING)]) == {"n": 1}
    assert things.find_one({"n": 42}) is None


def test_cursor_over_several_batches(server: MongoWireServer, db: Database) -> None:
    db.many.insert_many([{"i": i} for i in range(250)])
    cursor = db.many.find({}, {"_id": 0}).sort("i", ASCENDING).batch_size(50)
    assert [doc["i"] for doc in cursor] == list(range(250))
    assert cursor.alive is False
    assert len(list(db.many.find().limit(120))) == 120
    # An abandoned cursor is killed by the client, and the server forgets it.
    partial = db.many.find().batch_size(10)
    next(partial)
    partial.close()
    assert server.backend.open_cursors == 0


def test_update_one_and_many_with_upsert(things: Collection) -> None:
    result = things.update_many({"group": "odd"}, {"$set": {"flag": True}})
    assert (result.matched_count, result.modified_count) == (5, 5)
    assert things.count_documents({"flag": True}) == 5
    result = things.update_one({"_id": 100}, {"$set": {"n": 100}}, upsert=True)
    assert result.upserted_id == 100 and result.matched_count == 0
    assert things.find_one({"_id": 100}) == {"_id": 100, "n": 100}
    result = things.update_one({"_id": 100}, {"$inc": {"n": 1}})
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)
    result = things.replace_one({"_id": 100}, {"n": -1})
    assert result.modified_count == 1 and things.find_one({"_id": 100}) == {"_id": 100, "n": -1}


def test_find_one_and_update(things: Collection) -> None:
    before = things.find_one_and_update({"_id": 3}, {"$inc": {"n": 10}})
    assert before["n"] == 3
    after = things.find_one_and_update({"_id": 3}, {"$inc": {"n": 10}}, return_document=ReturnDocument.AFTER,
                                       projection={"n": 1})
    assert after == {"_id": 3, "n": 23}
    assert things.find_one_and_update({"_id": 99}, {"$set": {"n": 1}}) is None
    created = things.find_one_and_update({"_id": 99}, {"$set": {"n": 1}}, upsert=True,
                                         return_document=ReturnDocument.AFTER)
    assert created == {"_id": 99, "n": 1}
    first_even = things.find_one_and_update({"group": "even"}, {"$set": {"picked": True}},
                                            sort=[("n", DESCENDING)], return_document=ReturnDocument.AFTER)
    assert first_even["_id"] == 8 and first_even["picked"] is True


def test_find_one_and_delete_and_delete_many(things: Collection) -> None:
    removed = things.find_one_and_delete({"group": "odd"}, sort=[("n", DESCENDING)])
    assert removed["_id"] == 9
    assert things.find_one_and_delete({"_id": 9}) is None
    assert things.delete_one({"group": "odd"}).deleted_count == 1
    assert things.delete_many({"group": "odd"}).deleted_count == 3
    assert things.count_documents({}) == 5
    assert things.estimated_document_count() == 5


def test_count_aggregate_distinct(things: Collection) -> None:
    assert things.count_documents({"group": "even"}) == 5
    assert things.count_documents({}, skip=2, limit=5) == 5
    groups = things.aggregate([{"$match": {"n": {"$lt": 6}}},
                               {"$group": {"_id": "$group", "total": {"$sum": "$n"}}},
                               {"$sort": {"_id": 1}}])
    assert list(groups) == [{"_id": "even", "total": 6}, {"_id": "odd", "total": 9}]
    assert sorted(things.distinct("group")) == ["even", "odd"]
    assert things.distinct("n", {"group": "odd"}) == [1, 3, 5, 7, 9]


def test_unique_index_refuses_duplicates(db: Database) -> None:
    names = db.users.create_indexes([IndexModel([("login", ASCENDING)], unique=True),
                                     IndexModel([("expires", ASCENDING)], expireAfterSeconds=0)])
    assert names == ["login_1", "expires_1"]
    indexes = {index["name"]: index for index in db.users.list_indexes()}
    assert indexes["login_1"]["unique"] is True and dict(indexes["login_1"]["key"]) == {"login": 1}
    assert indexes["expires_1"]["expireAfterSeconds"] == 0
    db.users.insert_one({"login": "ann"})
    with pytest.raises(DuplicateKeyError):
        db.users.insert_one({"login": "ann"})
    with pytest.raises(DuplicateKeyError):
        db.users.update_one({"login": "bob"}, {"$set": {"login": "ann"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        db.users.find_one_and_update({"login": "carl"}, {"$set": {"login": "ann"}}, upsert=True)
    db.users.insert_one({"login": "bob"})
    with pytest.raises(DuplicateKeyError):
        db.users.update_one({"login": "bob"}, {"$set": {"login": "ann"}})
    assert sorted(doc["login"] for doc in db.users.find()) == ["ann", "bob"]
    with pytest.raises(BulkWriteError) as unordered:
        db.users.insert_many([{"login": "cid"}, {"login": "ann"}, {"login": "dan"}], ordered=False)
    assert unordered.value.details["nInserted"] == 2
    assert [error["code"] for error in unordered.value.details["writeErrors"]] == [11000]
    with pytest.raises(BulkWriteError) as ordered:
        db.users.insert_many([{"login": "eve"}, {"login": "ann"}, {"login": "fay"}])
    assert ordered.value.details["nInserted"] == 1
    assert sorted(doc["login"] for doc in db.users.find()) == ["ann", "bob", "cid", "dan", "eve"]


def test_sparse_unique_index_allows_documents_without_the_key(db: Database) -> None:
    db.tasks.create_index("pending_key", unique=True, sparse=True)
    db.tasks.insert_many([{"state": "done"} for _ in range(5)])
    db.tasks.insert_one({"pending_key": "publish:a"})
    with pytest.raises(DuplicateKeyError):
        db.tasks.insert_one({"pending_key": "publish:a"})
    assert db.tasks.count_documents({}) == 6


def test_collections_and_indexes_admin(db: Database) -> None:
    db.create_collection("made")
    db.other.insert_one({"a": 1})
    assert sorted(db.list_collection_names()) == ["made", "other"]
    assert [info["name"] for info in db.list_collections(filter={"name": "other"})] == ["other"]
    db.other.create_index([("a", ASCENDING)], name="by_a")
    db.other.drop_index("by_a")
    assert list(db.other.index_information()) == ["_id_"]
    assert list(db.missing.list_indexes()) == []
    db.drop_collection("made")
    assert db.list_collection_names() == ["other"]
    db.client.drop_database(db.name)
    assert db.list_collection_names() == []


def test_unknown_command_and_datetimes(db: Database) -> None:
    with pytest.raises(OperationFailure) as failure:
        db.command("noSuchCommand")
    assert failure.value.code == 59
    moment = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
    db.events.insert_one({"_id": 1, "at": moment})
    db.events.insert_one({"_id": 2, "at": moment + timedelta(hours=1)})
    assert db.events.find_one({"_id": 1})["at"] == moment
    assert [doc["_id"] for doc in db.events.find({"at": {"$gt": moment}})] == [2]


def test_two_processes_increment_one_counter_atomically(server: MongoWireServer, db: Database) -> None:
    db.counters.insert_one({"_id": "c", "value": 0})
    script = """
        import sys, pymongo
        client = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
        counters = client[sys.argv[2]].counters
        for _ in range(200):
            counters.find_one_and_update({"_id": "c"}, {"$inc": {"value": 1}})
    """
    workers = [run_python(script, server.url, db.name) for _ in range(2)]
    for worker in workers:
        _out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    assert db.counters.find_one({"_id": "c"})["value"] == 400


def test_runs_as_its_own_process(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    process = subprocess.Popen([sys.executable, "-m", "tests.mongo_server", "--port-file", str(port_file)],
                               cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    try:
        port = int(poll(lambda: port_file.exists() and port_file.read_text().strip(), 15, "the port file"))
        with pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true",
                                 serverSelectionTimeoutMS=5000) as mongo:
            mongo.db.items.insert_one({"_id": 1})
            assert mongo.db.items.find_one() == {"_id": 1}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_stop_closes_connections() -> None:
    server = MongoWireServer().start()
    mongo = pymongo.MongoClient(server.url, serverSelectionTimeoutMS=500)
    try:
        assert mongo.admin.command("ping")["ok"] == 1
        server.stop()
        with pytest.raises(pymongo.errors.PyMongoError):
            mongo.admin.command("ping")
    finally:
        mongo.close()
        server.stop()


@pytest.fixture
def registry_db(server: MongoWireServer, tmp_path: Path) -> Iterator[Collections]:
    """The project's own DB layer, connected (indexes created) through the server."""
    settings = Settings(mongo_url=server.url, data_dir=str(tmp_path), mongo_database=f"registry_{next(_names)}")
    collections = connect(settings)
    yield collections
    collections.database.client.close()


def test_project_db_layer(registry_db: Collections) -> None:
    assert registry_db.ping()
    tasks_indexes = {index["name"]: index for index in registry_db.tasks.list_indexes()}
    assert tasks_indexes["pending_key_1"]["unique"] and tasks_indexes["pending_key_1"]["sparse"]
    assert set(registry_db.database.list_collection_names()) == {name for name, models in INDEXES.items() if models}
    task, created = create_unless_pending(registry_db, "publish", ["repository:r1"], {})
    assert created
    twin, created = create_unless_pending(registry_db, "publish", ["repository:r1"], {})
    assert (twin["_id"], created) == (task["_id"], False)
    with pytest.raises(DuplicateKeyError):
        registry_db.tasks.insert_one({"_id": "other", "pending_key": task["pending_key"]})
