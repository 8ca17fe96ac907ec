"""A mongomock client that refuses what MongoDB itself would refuse, so tests catch it.

mongomock stores ``{"os.version": ...}`` or ``{"$where": ...}`` as field names, documents
of any size and arrays of any length; MongoDB rejects the first two (or makes
them ambiguous in paths) and caps a document at 16 MiB, which an array that
grows with use reaches in production. ``CheckingClient`` wraps a mongomock client:
every write (inserts, updates, replacements, upserts, ``find_one_and_*``,
``bulk_write``) is checked, both the write as sent and every document it leaves
stored, and a violation raises ``MongoRuleViolation`` (an ``AssertionError``)
naming the collection, the operation and the key, so the test that caused it fails.

Rules:

- no stored field name contains ``.`` or starts with ``$`` (or holds a NUL);
  update operators (``$set``...) are fine, and the keys of their documents are
  field paths (``{"$set": {"a.b": 1}}`` is allowed), but the values they store
  are checked like stored documents;
- a stored document is at most 16 MiB (BSON);
- no stored array holds more than ``MAX_ARRAY_LENGTH`` elements (an array that
  grows with use belongs in documents of its own).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import bson
import mongomock

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_ARRAY_LENGTH = 1000

#: Update operators whose document maps field paths to values that are stored as given.
_STORING_OPERATORS = frozenset({"$set", "$setOnInsert"})
#: Operators adding array elements: their values (or ``$each`` lists) are stored.
_ARRAY_OPERATORS = frozenset({"$push", "$addToSet"})
#: Positional path components MongoDB allows in an update path.
_POSITIONAL = ("$", "$[]")


class MongoRuleViolation(AssertionError):
    """A write MongoDB would refuse (or that would fail it in production)."""


def _bad_key(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"non-string field name {key!r}"
    if key.startswith("$"):
        return f"field name {key!r} starts with '$'"
    if "." in key:
        return f"field name {key!r} contains '.'"
    if "\x00" in key:
        return f"field name {key!r} contains a NUL character"
    return None


def value_problems(value: Any, path: str = "") -> Iterable[str]:
    """What is wrong with ``value`` as stored data: bad field names and too long arrays, with their paths."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            problem = _bad_key(key)
            where = f"{path}.{key}" if path else str(key)
            if problem:
                yield f"{problem} (at {where!r})"
            yield from value_problems(item, where)
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_ARRAY_LENGTH:
            yield (f"array {path!r} holds {len(value)} elements (more than {MAX_ARRAY_LENGTH}: "
                   "an array that grows with use belongs in documents of its own)")
        for index, item in enumerate(value):
            yield from value_problems(item, f"{path}.{index}" if path else str(index))


def path_problems(path: Any) -> Iterable[str]:
    """What is wrong with an update's field path (``a.b.0``, ``a.$``, ``a.$[]`` are fine)."""
    if not isinstance(path, str) or not path:
        yield f"invalid field path {path!r}"
        return
    for part in path.split("."):
        if not part:
            yield f"field path {path!r} has an empty part"
        elif part.startswith("$") and part not in _POSITIONAL and not (part.startswith("$[") and part.endswith("]")):
            yield f"field path {path!r} has a part starting with '$' ({part!r})"


def update_problems(update: Any) -> Iterable[str]:
    """Problems of an update document (operators) or a replacement document."""
    if isinstance(update, list):  # an aggregation pipeline: its stages compute values, not checked here
        return
    if not isinstance(update, Mapping):
        return
    if not any(isinstance(key, str) and key.startswith("$") for key in update):
        yield from value_problems(update)  # a replacement
        return
    for operator, fields in update.items():
        if not isinstance(fields, Mapping):
            continue
        for field_path, value in fields.items():
            for problem in path_problems(field_path):
                yield f"{operator}: {problem}"
            if operator in _STORING_OPERATORS:
                for problem in value_problems(value, field_path):
                    yield f"{operator}: {problem}"
            elif operator in _ARRAY_OPERATORS:
                elements = value.get("$each", []) if isinstance(value, Mapping) and "$each" in value else [value]
                for problem in value_problems(list(elements), field_path):
                    yield f"{operator}: {problem}"


def upsert_filter_problems(query: Any) -> Iterable[str]:
    """An upsert stores the filter's equality fields: check their values."""
    if not isinstance(query, Mapping):
        return
    for key, value in query.items():
        if isinstance(key, str) and key.startswith("$"):
            continue  # $and, $or...: not copied into the new document
        if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
            continue  # an operator expression ({"$in": [...]}) is not stored
        for problem in value_problems(value, str(key)):
            yield f"upsert filter: {problem}"


def document_problems(document: Mapping[str, Any]) -> Iterable[str]:
    """Problems of a document as stored: field names, array lengths, BSON size."""
    yield from value_problems(document)
    try:
        size = len(bson.encode(document))
    except Exception as exc:  # noqa: BLE001 - what BSON cannot encode, MongoDB cannot store
        yield f"document cannot be encoded as BSON: {exc}"
        return
    if size > MAX_DOCUMENT_BYTES:
        yield f"document is {size} bytes of BSON (MongoDB's limit is {MAX_DOCUMENT_BYTES})"


class CheckingCollection:
    """A mongomock collection whose writes are checked against MongoDB's rules."""

    def __init__(self, collection: mongomock.Collection) -> None:
        self._collection = collection

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._collection, name))

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._collection[name])

    def __eq__(self, other: Any) -> bool:
        other = other._collection if isinstance(other, CheckingCollection) else other
        return self._collection == other

    def __hash__(self) -> int:
        return hash(self._collection.full_name)

    def __repr__(self) -> str:
        return f"CheckingCollection({self._collection.full_name!r})"

    # --- checks -----------------------------------------------------------------

    def _fail(self, operation: str, problems: Iterable[str]) -> None:
        problems = list(problems)
        if problems:
            raise MongoRuleViolation(f"MongoDB would refuse {operation} on collection "
                                     f"{self._collection.name!r}: " + "; ".join(problems))

    def _ids_matching(self, query: Any, sort: Any = None, one: bool = True) -> list[Any]:
        cursor = self._collection.find(query or {}, {"_id": 1}, sort=sort)
        if one:
            cursor = cursor.limit(1)
        return [doc["_id"] for doc in cursor]

    def _check_stored(self, operation: str, ids: Iterable[Any]) -> None:
        for doc_id in ids:
            stored = self._collection.find_one({"_id": doc_id})
            if stored is not None:
                self._fail(operation, (f"{problem} in document {doc_id!r}" for problem in document_problems(stored)))

    def _upserted_id(self, query: Any, upsert: bool, before_ids: list[Any], result_id: Any = None) -> list[Any]:
        if before_ids or not upsert:
            return []
        if result_id is not None:
            return [result_id]
        if isinstance(query, Mapping) and "_id" in query and not isinstance(query["_id"], Mapping):
            return [query["_id"]]
        found = self._collection.find_one(query, {"_id": 1})
        return [found["_id"]] if found else []

    # --- writes -----------------------------------------------------------------

    def insert_one(self, document: Any, *args: Any, **kwargs: Any) -> Any:
        self._fail("insert_one", document_problems(document) if isinstance(document, Mapping) else ())
        result = self._collection.insert_one(document, *args, **kwargs)
        self._check_stored("insert_one", [result.inserted_id])
        return result

    def insert_many(self, documents: Any, *args: Any, **kwargs: Any) -> Any:
        documents = list(documents)
        for document in documents:
            self._fail("insert_many", document_problems(document) if isinstance(document, Mapping) else ())
        result = self._collection.insert_many(documents, *args, **kwargs)
        self._check_stored("insert_many", result.inserted_ids)
        return result

    def _update(self, operation: str, query: Any, update: Any, *args: Any, many: bool = False,
                **kwargs: Any) -> Any:
        upsert = bool(kwargs.get("upsert"))
        self._fail(operation, update_problems(update))
        if upsert:
            self._fail(operation, upsert_filter_problems(query))
        before_ids = self._ids_matching(query, kwargs.get("sort"), one=not many)
        result = getattr(self._collection, operation)(query, update, *args, **kwargs)
        upserted = getattr(result, "upserted_id", None)
        self._check_stored(operation, before_ids + self._upserted_id(query, upsert, before_ids, upserted))
        return result

    def update_one(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002 - pymongo's name
        return self._update("update_one", filter, update, *args, **kwargs)

    def update_many(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        return self._update("update_many", filter, update, *args, many=True, **kwargs)

    def replace_one(self, filter: Any, replacement: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        return self._update("replace_one", filter, replacement, *args, **kwargs)

    def find_one_and_update(self, filter: Any, update: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        return self._update("find_one_and_update", filter, update, *args, **kwargs)

    def find_one_and_replace(self, filter: Any, replacement: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        return self._update("find_one_and_replace", filter, replacement, *args, **kwargs)

    def bulk_write(self, requests: Any, *args: Any, **kwargs: Any) -> Any:
        requests = list(requests)
        touched: list[Any] = []
        for request in requests:
            name = type(request).__name__
            document = getattr(request, "_doc", None)
            query = getattr(request, "_filter", None)
            if name == "InsertOne":
                self._fail("bulk_write InsertOne", document_problems(document))
                continue
            if document is not None:
                self._fail(f"bulk_write {name}", update_problems(document))
            if getattr(request, "_upsert", False):
                self._fail(f"bulk_write {name}", upsert_filter_problems(query))
            if query is not None and not name.startswith("Delete"):
                touched.extend(self._ids_matching(query, one=name.endswith("One")))
        result = self._collection.bulk_write(requests, *args, **kwargs)
        upserted = list((getattr(result, "upserted_ids", None) or {}).values())
        self._check_stored("bulk_write", touched + upserted)
        for request in requests:
            if type(request).__name__ == "InsertOne":
                self._check_stored("bulk_write", [request._doc.get("_id")])
        return result


class CheckingDatabase:
    """A mongomock database whose collections are ``CheckingCollection``s."""

    def __init__(self, database: mongomock.Database) -> None:
        self._database = database

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._database, name))

    def __getitem__(self, name: str) -> CheckingCollection:
        return CheckingCollection(self._database[name])

    def get_collection(self, name: str, *args: Any, **kwargs: Any) -> CheckingCollection:
        return CheckingCollection(self._database.get_collection(name, *args, **kwargs))


class CheckingClient:
    """A mongomock client whose databases check every write against MongoDB's rules."""

    def __init__(self, client: mongomock.MongoClient | None = None) -> None:
        self._client = client if client is not None else mongomock.MongoClient()

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self._client, name))

    def __getitem__(self, name: str) -> CheckingDatabase:
        return CheckingDatabase(self._client[name])

    def get_database(self, name: str | None = None, *args: Any, **kwargs: Any) -> CheckingDatabase:
        return CheckingDatabase(self._client.get_database(name, *args, **kwargs))


def _wrap(value: Any) -> Any:
    if isinstance(value, mongomock.Collection):
        return CheckingCollection(value)
    if isinstance(value, mongomock.Database):
        return CheckingDatabase(value)
    return value
