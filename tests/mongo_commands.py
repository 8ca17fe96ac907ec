"""The commands of ``tests/mongo_server.py``: MongoDB commands run against one mongomock client.

Decoded command documents in, reply documents out, one command at a time under
one lock (each command is atomic across all clients). The wire format and the
TCP server are ``mongo_server``'s.
"""
from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator

import bson
import mongomock
from bson.int64 import Int64

__all__ = ["CommandError", "MongoBackend"]

log = logging.getLogger(__name__)

#: MongoDB 7.0: within what pymongo 4.x supports (9..29).
MAX_WIRE_VERSION = 21
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH = 100_000
#: MongoDB's first batch holds 101 documents unless the client asks otherwise.
FIRST_BATCH = 101
#: A batch stops growing past this many BSON bytes, so a reply stays under ``MAX_MESSAGE_SIZE``.
BATCH_BYTES = 8 * 1024 * 1024
#: Names of the codes mongomock raises with, for ``codeName``.
_CODE_NAMES = {2: "BadValue", 8: "UnknownError", 11000: "DuplicateKey", 85: "IndexOptionsConflict"}


class CommandError(Exception):
    """A command failure, sent as ``{ok: 0, code, codeName, errmsg}`` (pymongo raises ``OperationFailure``)."""

    def __init__(self, code: int, code_name: str, errmsg: str) -> None:
        super().__init__(errmsg)
        self.code, self.code_name, self.errmsg = code, code_name, errmsg

    def reply(self) -> dict[str, Any]:
        return {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": self.code_name}


# --- cursors and helpers ----------------------------------------------------------------------------------


@dataclass
class _Cursor:
    namespace: str
    documents: Iterator[dict[str, Any]]


def _sort(spec: Any) -> list[tuple[str, Any]] | None:
    """A command's sort document as the list mongomock takes."""
    return list(spec.items()) if spec else None


def _is_replacement(update: dict[str, Any]) -> bool:
    """A whole new document rather than update operators (``{}`` replaces with an empty document)."""
    return not update or not next(iter(update)).startswith("$")


def _cursor_reply(cursor_id: int, namespace: str, batch: list[dict[str, Any]], first: bool) -> dict[str, Any]:
    key = "firstBatch" if first else "nextBatch"
    return {"cursor": {key: batch, "id": Int64(cursor_id), "ns": namespace}, "ok": 1.0}


class MongoBackend:
    """Runs commands (already decoded) against one mongomock client, one command at a time."""

    def __init__(self, client: mongomock.MongoClient | None = None) -> None:
        self.client = client if client is not None else mongomock.MongoClient()
        self.lock = threading.Lock()
        self._cursors: dict[int, _Cursor] = {}
        self._cursor_ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._handlers: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            name.lower(): getattr(self, "_cmd_" + name) for name in (
                "hello", "isMaster", "ping", "buildInfo", "endSessions", "find", "getMore", "killCursors",
                "insert", "update", "delete", "findAndModify", "aggregate", "count", "distinct",
                "createIndexes", "listIndexes", "listCollections", "listDatabases", "drop", "dropDatabase",
                "dropIndexes", "create", "renameCollection")}

    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        """The reply to ``command``; failures become ``ok: 0`` replies, never exceptions."""
        database = command.get("$db", "admin")
        body = {key: value for key, value in command.items() if not key.startswith("$") and key != "lsid"}
        if not body:
            return CommandError(9, "FailedToParse", "empty command").reply()
        name = next(iter(body))
        handler = self._handlers.get(name.lower())
        if handler is None:
            return CommandError(59, "CommandNotFound", f"no such command: '{name}'").reply()
        try:
            with self.lock:
                return handler(body, database)
        except CommandError as exc:
            return exc.reply()
        except mongomock.OperationFailure as exc:
            code = exc.code or 8
            return CommandError(code, _CODE_NAMES.get(code, "OperationFailed"), str(exc)).reply()
        except mongomock.CollectionInvalid as exc:
            return CommandError(48, "NamespaceExists", str(exc)).reply()
        except (ValueError, NotImplementedError) as exc:  # mongomock refusing what it cannot or will not do
            return CommandError(2, "BadValue", f"{type(exc).__name__}: {exc}").reply()
        except Exception as exc:  # noqa: BLE001 - a bug or mongomock gap must reach the client, not kill it
            log.exception("command %s failed", name)
            return CommandError(8, "UnknownError", f"{type(exc).__name__}: {exc}").reply()

    @property
    def open_cursors(self) -> int:
        """Cursors a client may still ask ``getMore`` of (pymongo kills those it abandons)."""
        return len(self._cursors)

    def hello_reply(self, legacy: bool) -> dict[str, Any]:
        """A standalone, writable server; session ids (``lsid``) are accepted and ignored."""
        return {"helloOk": True, "isWritablePrimary": True, **({"ismaster": True} if legacy else {}),
                "maxBsonObjectSize": MAX_BSON_SIZE, "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
                "maxWriteBatchSize": MAX_WRITE_BATCH, "localTime": datetime.now(timezone.utc),
                "logicalSessionTimeoutMinutes": 30, "connectionId": next(self._connection_ids),
                "minWireVersion": 0, "maxWireVersion": MAX_WIRE_VERSION, "readOnly": False, "ok": 1.0}

    def _collection(self, body: dict[str, Any], database: str) -> Any:
        name = next(iter(body.values()))
        if not isinstance(name, str) or not name:
            raise CommandError(73, "InvalidNamespace", f"invalid collection name {name!r}")
        return self.client[database][name]

    def _open_cursor(self, namespace: str, documents: Iterable[dict[str, Any]], batch_size: int | None,
                     single_batch: bool = False) -> dict[str, Any]:
        """The first batch, keeping the rest (already computed under the lock) for ``getMore``."""
        iterator = iter(documents)
        batch = self._batch(iterator, FIRST_BATCH if batch_size is None else batch_size)
        cursor_id = 0
        if not single_batch:
            pending = next(iterator, None)
            if pending is not None:
                cursor_id = next(self._cursor_ids)
                self._cursors[cursor_id] = _Cursor(namespace, itertools.chain([pending], iterator))
        return _cursor_reply(cursor_id, namespace, batch, first=True)

    @staticmethod
    def _batch(documents: Iterator[dict[str, Any]], size: int) -> list[dict[str, Any]]:
        """Up to ``size`` documents (0: all), stopping early once the batch is large."""
        batch: list[dict[str, Any]] = []
        total = 0
        for document in itertools.islice(documents, size or None):
            batch.append(document)
            total += len(bson.encode(document))
            if total >= BATCH_BYTES:
                break
        return batch

    # handshake and administration

    def _cmd_hello(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        return self.hello_reply(legacy=False)

    def _cmd_isMaster(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        return self.hello_reply(legacy=True)

    def _cmd_ping(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        return {"ok": 1.0}

    def _cmd_buildInfo(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "gitVersion": "mongomock",
                "maxBsonObjectSize": MAX_BSON_SIZE, "ok": 1.0}

    def _cmd_endSessions(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        return {"ok": 1.0}

    # reads and cursors

    def _cmd_find(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        limit = int(body.get("limit") or 0)
        documents = list(collection.find(body.get("filter") or {}, body.get("projection") or None,
                                         skip=int(body.get("skip") or 0), limit=abs(limit),
                                         sort=_sort(body.get("sort"))))
        return self._open_cursor(collection.full_name, documents, body.get("batchSize"),
                                 single_batch=bool(body.get("singleBatch")) or limit < 0)

    def _cmd_getMore(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        cursor_id = int(body["getMore"])
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            raise CommandError(43, "CursorNotFound", f"cursor id {cursor_id} not found")
        batch = self._batch(cursor.documents, int(body.get("batchSize") or 0))
        pending = next(cursor.documents, None)
        if pending is None:
            del self._cursors[cursor_id]
            cursor_id = 0
        else:
            cursor.documents = itertools.chain([pending], cursor.documents)
        return _cursor_reply(cursor_id, cursor.namespace, batch, first=False)

    def _cmd_killCursors(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        killed, unknown = [], []
        for cursor_id in body.get("cursors", []):
            (killed if self._cursors.pop(int(cursor_id), None) else unknown).append(cursor_id)
        return {"cursorsKilled": killed, "cursorsNotFound": unknown, "cursorsAlive": [], "cursorsUnknown": [],
                "ok": 1.0}

    def _cmd_aggregate(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        documents = list(collection.aggregate(body.get("pipeline", [])))
        return self._open_cursor(collection.full_name, documents, body.get("cursor", {}).get("batchSize"))

    def _cmd_count(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        options = {key: int(body[key]) for key in ("skip", "limit") if body.get(key)}
        return {"n": self._collection(body, database).count_documents(body.get("query") or {}, **options),
                "ok": 1.0}

    def _cmd_distinct(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        values = self._collection(body, database).distinct(body["key"], body.get("query") or {})
        return {"values": values, "ok": 1.0}

    # writes: each statement's failure is a write error, as MongoDB reports it

    def _write(self, statements: list[dict[str, Any]], ordered: bool,
               run: Callable[[int, dict[str, Any]], None]) -> tuple[int, dict[str, Any]]:
        """Run each statement; how many succeeded, and the ``writeErrors`` of the others."""
        errors = []
        for index, statement in enumerate(statements):
            try:
                run(index, statement)
            except mongomock.OperationFailure as exc:
                errors.append({"index": index, "code": exc.code or 2, "errmsg": str(exc)})
            except (ValueError, NotImplementedError) as exc:  # mongomock refusing the statement
                errors.append({"index": index, "code": 2, "errmsg": f"{type(exc).__name__}: {exc}"})
            if errors and ordered:
                return index, {"writeErrors": errors}
        return len(statements) - len(errors), {"writeErrors": errors} if errors else {}

    def _cmd_insert(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        documents = body.get("documents", [])
        inserted, reply = self._write(documents, body.get("ordered", True), lambda _i, doc: collection.insert_one(doc))
        return {"n": inserted, **reply, "ok": 1.0}

    def _cmd_update(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        counts = {"n": 0, "nModified": 0}
        upserted: list[dict[str, Any]] = []

        def run(index: int, statement: dict[str, Any]) -> None:
            update, upsert = statement.get("u", {}), bool(statement.get("upsert"))
            if not isinstance(update, dict):
                raise mongomock.OperationFailure("pipeline updates are not supported", 2)
            if _is_replacement(update):
                result = collection.replace_one(statement["q"], update, upsert=upsert)
            elif statement.get("multi"):
                result = collection.update_many(statement["q"], update, upsert=upsert)
            else:
                result = collection.update_one(statement["q"], update, upsert=upsert,
                                               array_filters=statement.get("arrayFilters"))
            counts["n"] += result.matched_count
            counts["nModified"] += result.modified_count
            if result.upserted_id is not None:
                counts["n"] += 1
                upserted.append({"index": index, "_id": result.upserted_id})

        _done, reply = self._write(body.get("updates", []), body.get("ordered", True), run)
        return {**counts, **({"upserted": upserted} if upserted else {}), **reply, "ok": 1.0}

    def _cmd_delete(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        deleted = [0]

        def run(_index: int, statement: dict[str, Any]) -> None:
            remove = collection.delete_one if statement.get("limit") else collection.delete_many
            deleted[0] += remove(statement["q"]).deleted_count

        _done, reply = self._write(body.get("deletes", []), body.get("ordered", True), run)
        return {"n": deleted[0], **reply, "ok": 1.0}

    def _cmd_findAndModify(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        query, sort = body.get("query") or {}, _sort(body.get("sort"))
        projection = body.get("fields") or None
        existed = collection.find_one(query, {"_id": 1}, sort=sort) is not None
        if body.get("remove"):
            value = collection.find_one_and_delete(query, projection, sort=sort)
            return {"lastErrorObject": {"n": int(value is not None)}, "value": value, "ok": 1.0}
        update, upsert = body.get("update"), bool(body.get("upsert"))
        if not isinstance(update, dict):
            raise CommandError(2, "BadValue", "findAndModify needs an update document or remove")
        modify = collection.find_one_and_replace if _is_replacement(update) else collection.find_one_and_update
        value = modify(query, update, projection, sort=sort, upsert=upsert, return_document=bool(body.get("new")))
        last_error = {"n": int(existed or upsert), "updatedExisting": existed}
        return {"lastErrorObject": last_error, "value": value, "ok": 1.0}

    # collections and indexes

    def _cmd_createIndexes(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        existed = collection.name in collection.database.list_collection_names()
        before = len(collection.index_information()) if existed else 0
        for spec in body.get("indexes", []):
            options = {key: value for key, value in spec.items() if key not in ("key", "v", "background")}
            collection.create_index(list(spec["key"].items()), **options)
        return {"createdCollectionAutomatically": not existed, "numIndexesBefore": before,
                "numIndexesAfter": len(collection.index_information()), "ok": 1.0}

    def _cmd_listIndexes(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        if collection.name not in collection.database.list_collection_names():
            raise CommandError(26, "NamespaceNotFound", f"ns does not exist: {collection.full_name}")
        indexes = [{"v": 2, "key": dict(info["key"]), "name": name,
                    **{key: value for key, value in info.items() if key not in ("v", "key")}}
                   for name, info in collection.index_information().items()]
        return self._open_cursor(collection.full_name, indexes, body.get("cursor", {}).get("batchSize"))

    def _cmd_listCollections(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        from mongomock.filtering import filter_applies

        infos = [{"name": name, "type": "collection", "options": {}, "info": {"readOnly": False},
                  "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}
                 for name in sorted(self.client[database].list_collection_names())]
        infos = [info for info in infos if filter_applies(body.get("filter") or {}, info)]
        if body.get("nameOnly"):
            infos = [{"name": info["name"], "type": info["type"]} for info in infos]
        return self._open_cursor(f"{database}.$cmd.listCollections", infos,
                                 body.get("cursor", {}).get("batchSize"))

    def _cmd_listDatabases(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        names = self.client.list_database_names()
        return {"databases": [{"name": name, "sizeOnDisk": 0, "empty": False} for name in names],
                "totalSize": 0, "ok": 1.0}

    def _cmd_create(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        self.client[database].create_collection(body["create"])
        return {"ok": 1.0}

    def _cmd_drop(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        self.client[database].drop_collection(body["drop"])
        return {"ns": f"{database}.{body['drop']}", "ok": 1.0}

    def _cmd_dropDatabase(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        self.client.drop_database(database)
        return {"dropped": database, "ok": 1.0}

    def _cmd_dropIndexes(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        collection = self._collection(body, database)
        index = body.get("index", "*")
        if index == "*":
            collection.drop_indexes()
        else:
            collection.drop_index(index if isinstance(index, str) else list(index.items()))
        return {"ok": 1.0}

    def _cmd_renameCollection(self, body: dict[str, Any], database: str) -> dict[str, Any]:
        source_db, source = body["renameCollection"].split(".", 1)
        target_db, target = body["to"].split(".", 1)
        if source_db != target_db:
            raise CommandError(20, "IllegalOperation", "renaming across databases is not supported")
        self.client[source_db].rename_collection(source, target, dropTarget=bool(body.get("dropTarget")))
        return {"ok": 1.0}


