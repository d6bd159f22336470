"""What the bot relies on from its MongoDB server, probed over the wire on the server the tests use: the
local nx-27017, or a real MongoDB when TEST_MONGODB_URI is set.

Each test asserts what MongoDB does. Where nx-27017 deviates, the test carries ``nx_deviation(reason)``: an
``xfail(strict=True)`` on nx-27017 (so a fixed nx-27017 shows up here as a failure) and a plain test on
MongoDB. The README's "Deviations" list is this file's.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, InsertOne, MongoClient, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from bot.dev.localmongo import LocalMongo

pytestmark = pytest.mark.mongodb
Client = MongoClient[dict[str, Any]]


@pytest.fixture(scope="module")
def client(mongo_uri: str) -> Iterator[Client]:
    made: Client = MongoClient(mongo_uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, timeoutMS=30_000,
                               tz_aware=True)
    yield made
    made.close()


@pytest.fixture(scope="module")
def on_nx(client: Client) -> bool:
    """The server is nx-27017 (its buildInfo says so), wherever it came from."""
    return client.admin.command("buildInfo").get("process") == "nx_27017"


@pytest.fixture(autouse=True)
def _nx_deviation(request: pytest.FixtureRequest, on_nx: bool) -> None:
    marker = request.node.get_closest_marker("nx_deviation")
    if marker is not None and on_nx:
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"nx-27017 deviates: {marker.args[0]}"))


def nx_deviation(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.nx_deviation(reason)


@pytest.fixture
def db(client: Client) -> Iterator[Database[dict[str, Any]]]:
    name = f"probe_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)


Db = Database[dict[str, Any]]


# ---- conditional writes: the store's versions, counters, claims and leases ---------------------------------
def test_a_conditional_update_matches_only_the_expected_version(db: Db) -> None:
    db.records.insert_one({"_id": "incident:RB-1", "version": 0, "data": {"reason": "a"}})
    won = db.records.update_one({"_id": "incident:RB-1", "version": 0}, {"$set": {"version": 1, "data.reason": "b"}})
    lost = db.records.update_one({"_id": "incident:RB-1", "version": 0}, {"$set": {"version": 1, "data.reason": "c"}})
    assert (won.matched_count, won.modified_count, lost.matched_count) == (1, 1, 0)
    assert db.records.find_one({"_id": "incident:RB-1"}) == {"_id": "incident:RB-1", "version": 1,
                                                               "data": {"reason": "b"}}


def test_find_one_and_update_upserts_a_counter_and_returns_the_new_value(db: Db) -> None:
    values = [db.counters.find_one_and_update({"_id": "incident"}, {"$inc": {"value": 1}}, upsert=True,
                                              return_document=ReturnDocument.AFTER)["value"] for _ in range(3)]
    assert values == [1, 2, 3]


LEASE_FILTER = {"_id": "monitor", "$or": [{"holder": "b"}, {"expires_at": {"$lte": "2026-02-07T03:00:00Z"}}]}


def take_lease(db: Db) -> dict[str, Any] | None:
    return db.leases.find_one_and_update(LEASE_FILTER, {"$set": {"holder": "b"}}, upsert=True,
                                         return_document=ReturnDocument.AFTER)


def test_an_upsert_that_misses_a_held_lease_takes_nothing(db: Db) -> None:
    """What the store's try_lease relies on: either DuplicateKeyError or no document, and the holder stays."""
    db.leases.insert_one({"_id": "monitor", "holder": "a", "expires_at": "2099-01-01T00:00:00Z"})
    try:
        row = take_lease(db)
    except DuplicateKeyError:
        row = None
    assert row is None or row["holder"] != "b"
    assert db.leases.find_one({"_id": "monitor"})["holder"] == "a"  # type: ignore[index]


@nx_deviation("find_one_and_update(upsert=True) whose filter misses an existing _id returns None instead of "
              "raising DuplicateKeyError (E11000); update_one(upsert=True) does raise it")
def test_an_upsert_that_would_duplicate_an_id_raises_duplicate_key_error(db: Db) -> None:
    db.leases.insert_one({"_id": "monitor", "holder": "a", "expires_at": "2099-01-01T00:00:00Z"})
    with pytest.raises(DuplicateKeyError):
        take_lease(db)


def test_a_duplicate_id_or_unique_key_raises_duplicate_key_error(db: Db) -> None:
    db.claims.insert_one({"_id": "event:Ev1"})
    with pytest.raises(DuplicateKeyError) as duplicate_id:
        db.claims.insert_one({"_id": "event:Ev1"})
    db.users.create_index("email", unique=True)
    db.users.insert_one({"email": "a@example.invalid"})
    with pytest.raises(DuplicateKeyError) as duplicate_key:
        db.users.insert_one({"email": "a@example.invalid"})
    assert duplicate_id.value.code == duplicate_key.value.code == 11000
    assert db.claims.count_documents({}) == db.users.count_documents({}) == 1


def test_an_unordered_bulk_write_applies_every_valid_operation_and_reports_the_duplicate(db: Db) -> None:
    db.cases.insert_one({"_id": 1, "n": 0})
    with pytest.raises(BulkWriteError) as failed:
        db.cases.bulk_write([UpdateOne({"_id": 1}, {"$set": {"n": 1}}), InsertOne({"_id": 1}), InsertOne({"_id": 2}),
                             UpdateOne({"_id": 3}, {"$set": {"n": 3}}, upsert=True)], ordered=False)
    details = failed.value.details
    assert (details["nInserted"], details["nModified"], details["nUpserted"]) == (1, 1, 1)
    assert [(error["index"], error["code"]) for error in details["writeErrors"]] == [(1, 11000)]
    assert list(db.cases.find({}, sort=[("_id", 1)])) == [{"_id": 1, "n": 1}, {"_id": 2}, {"_id": 3, "n": 3}]


def test_insert_many_in_batches_keeps_every_document(db: Db) -> None:
    for start in range(0, 5000, 1000):  # as a restore writes a large backup, one batch at a time
        result = db.cases.insert_many([{"i": i, "pad": "x" * 200} for i in range(start, start + 1000)])
        assert len(result.inserted_ids) == 1000
    assert db.cases.count_documents({}) == 5000
    assert db.cases.count_documents({"i": {"$gte": 4000}}) == 1000


# ---- reads: dumps, dry runs, probes ------------------------------------------------------------------------------
def test_find_with_sort_limit_and_small_batches_returns_every_document_in_order(db: Db) -> None:
    db.cases.insert_many([{"i": i} for i in range(2000)])
    cursor = db.cases.find({"i": {"$gte": 100}}, sort=[("i", DESCENDING)], limit=1500, batch_size=100)
    assert [d["i"] for d in cursor] == list(range(1999, 499, -1))
    dumped = [d["i"] for d in db.cases.find({}, sort=[("_id", ASCENDING)], batch_size=7)]  # a dump's shape
    assert dumped == list(range(2000))


def test_find_raw_batches_returns_bson_that_decodes_to_the_documents(db: Db) -> None:
    db.cases.insert_many([{"i": i} for i in range(1200)])
    batches = list(db.cases.find_raw_batches({}, sort=[("i", 1)], batch_size=500))
    decoded = [d["i"] for batch in batches for d in bson.decode_all(batch)]
    assert decoded == list(range(1200)) and len(batches) >= 2


def test_count_documents_with_exists_and_or_and_update_many_unset_count_what_the_cleanup_changes(db: Db) -> None:
    db.internshipcases.insert_many([{"step": 1, "case_type": "x"}, {"step": 2}, {"case_type": "y"}, {"title": "old"}])
    query = {"$or": [{field: {"$exists": True}} for field in ("step", "case_type", "patient_state")]}
    assert db.internshipcases.count_documents(query) == 3
    assert db.internshipcases.count_documents({"step": {"$exists": False}}) == 2
    result = db.internshipcases.update_many({}, {"$unset": {"step": "", "case_type": "", "patient_state": ""}})
    assert (result.matched_count, result.modified_count) == (4, 3)
    assert db.internshipcases.count_documents(query) == 0
    assert db.internshipcases.update_many({}, {"$unset": {"step": ""}}).modified_count == 0


def test_collections_and_databases_are_listed_and_dropped(client: Client, db: Db) -> None:
    db.internshipcases.insert_one({"a": 1})
    db.internship_case_attempts.insert_one({"a": 1})
    assert sorted(db.list_collection_names()) == ["internship_case_attempts", "internshipcases"]
    db.drop_collection("internship_case_attempts")
    db.drop_collection("never_existed")  # dropping what is not there is not an error
    assert db.list_collection_names() == ["internshipcases"]
    assert db.name in client.list_database_names()
    client.drop_database(db.name)
    assert db.name not in client.list_database_names()


def test_index_information_gives_keys_and_uniqueness_for_the_backup_metadata(db: Db) -> None:
    db.users.create_index("email", unique=True)
    db.users.create_index([("school", ASCENDING), ("created_at", ASCENDING)])
    keys = {tuple(info["key"]): bool(info.get("unique")) for info in db.users.index_information().values()}
    assert keys == {(("_id", 1),): False, (("email", 1),): True, (("school", 1), ("created_at", 1)): False}


@nx_deviation("index_information() names indexes idx_<collection>_<fields> instead of the name create_index "
              "returned (email_1), and reports a descending key as ascending")
def test_index_names_and_directions_are_kept(db: Db) -> None:
    name = db.users.create_index([("school", ASCENDING), ("created_at", DESCENDING)])
    assert name == "school_1_created_at_-1"
    assert db.users.index_information()[name]["key"] == [("school", 1), ("created_at", -1)]


@nx_deviation("after create_index([('incident_id', 1), ('_id', 1)]) every insert into the collection fails with "
              "WriteError code 8 \"JSON path error near '_id'\" (bot/store/mongo.py creates this index on `audit`)")
def test_a_compound_index_with_id_leaves_the_collection_writable(db: Db) -> None:
    db.audit.create_index([("incident_id", ASCENDING), ("_id", ASCENDING)])
    db.audit.insert_one({"_id": 1, "incident_id": "RB-0001", "event": {"hash": "h1"}})
    db.audit.insert_one({"_id": 2, "incident_id": None, "event": {"hash": "h2"}})
    assert [d["_id"] for d in db.audit.find({"incident_id": "RB-0001"}, sort=[("_id", 1)])] == [1]
    assert db.audit.find_one({}, sort=[("_id", DESCENDING)])["_id"] == 2  # type: ignore[index]


@nx_deviation("create_index([('incident_id', 1), ('_id', 1)]) on a collection that has documents fails with "
              "OperationFailure \"JSON path error near '_id'\" (so MongoStore cannot open a store whose audit log "
              "has events)")
def test_a_compound_index_with_id_can_be_created_on_a_collection_with_documents(db: Db) -> None:
    db.audit.insert_many([{"_id": 1, "incident_id": "RB-0001"}, {"_id": 2, "incident_id": None}])
    db.audit.create_index([("incident_id", ASCENDING), ("_id", ASCENDING)])
    assert [d["_id"] for d in db.audit.find({"incident_id": "RB-0001"}, sort=[("_id", 1)])] == [1]


# ---- aggregation --------------------------------------------------------------------------------------------------
def test_facet_returns_each_sub_pipeline(db: Db) -> None:
    db.sessions.insert_many([{"i": i, "generation": "failed" if i % 4 == 0 else "ok"} for i in range(20)])
    [out] = db.sessions.aggregate([{"$facet": {
        "total": [{"$count": "n"}],
        "failed": [{"$match": {"generation": "failed"}}, {"$count": "n"}],
        "latest": [{"$sort": {"i": -1}}, {"$limit": 2}, {"$project": {"_id": 0, "i": 1}}],
    }}])
    assert out["total"] == [{"n": 20}] and out["failed"] == [{"n": 5}] and out["latest"] == [{"i": 19}, {"i": 18}]


@nx_deviation("$facet's output document gets an extra field '_id': 0")
def test_facet_output_has_only_the_facet_fields(db: Db) -> None:
    db.sessions.insert_one({"i": 1})
    [out] = db.sessions.aggregate([{"$facet": {"total": [{"$count": "n"}]}}])
    assert out == {"total": [{"n": 1}]}


def test_group_with_sum_cond_and_ifnull(db: Db) -> None:
    db.sessions.insert_many([{"school": "a", "generation": "failed"}, {"school": "a", "generation": "ok"},
                             {"school": "a"}, {"school": "b", "generation": None}, {"school": "b",
                                                                                    "generation": "failed"}])
    rows = db.sessions.aggregate([{"$group": {
        "_id": "$school",
        "total": {"$sum": 1},
        "failed": {"$sum": {"$cond": [{"$eq": ["$generation", "failed"]}, 1, 0]}},
        "unknown": {"$sum": {"$cond": [{"$eq": [{"$ifNull": ["$generation", "none"]}, "none"]}, 1, 0]}},
    }}, {"$sort": {"_id": 1}}])
    assert list(rows) == [{"_id": "a", "total": 3, "failed": 1, "unknown": 1},
                          {"_id": "b", "total": 2, "failed": 1, "unknown": 1}]


# ---- $type -------------------------------------------------------------------------------------------------------
# (an empty array: $type matches an array by the types of its elements too)
TYPED = [{"v": 1}, {"v": 1.5}, {"v": Int64(5)}, {"v": "s"}, {"v": None}, {"v": datetime(2026, 1, 1, tzinfo=UTC)},
         {"v": True}, {"v": []}, {"v": {"a": 1}}, {"v": ObjectId()}, {"w": "no v"}]


def typed() -> list[dict[str, Any]]:
    return [dict(document) for document in TYPED]


def test_type_matches_strings_numbers_and_documents(db: Db) -> None:
    db.typed.insert_many(typed())
    kinds = ("string", "number", "bool", "object", "array")
    counts = {t: db.typed.count_documents({"v": {"$type": t}}) for t in kinds}
    assert counts == {"string": 1, "number": 3, "bool": 1, "object": 1, "array": 1}


@nx_deviation("$type 'date' and 'objectId' match nothing; 'int' and 'long' match every number; 'null' also "
              "matches a missing field")
def test_type_tells_dates_object_ids_int_long_and_null_apart(db: Db) -> None:
    db.typed.insert_many(typed())
    counts = {t: db.typed.count_documents({"v": {"$type": t}}) for t in ("date", "objectId", "int", "long", "null")}
    assert counts == {"date": 1, "objectId": 1, "int": 1, "long": 1, "null": 1}


@nx_deviation("the $type expression names a date 'object', a 64-bit integer 'int' and a missing field 'unknown'")
def test_type_expression_names_every_bson_type(db: Db) -> None:
    db.typed.insert_many(typed())
    names = [d["t"] for d in db.typed.aggregate([{"$sort": {"_id": 1}}, {"$project": {"_id": 0,
                                                                                       "t": {"$type": "$v"}}}])]
    assert names == ["int", "double", "long", "string", "null", "date", "bool", "array", "object", "objectId",
                     "missing"]


# ---- time ---------------------------------------------------------------------------------------------------------
def test_tz_aware_datetimes_come_back_as_the_same_instant_in_utc(db: Db) -> None:
    berlin = timezone(timedelta(hours=2))
    db.times.insert_one({"_id": 1, "at": datetime(2026, 2, 7, 3, 0, tzinfo=berlin)})
    db.times.insert_one({"_id": 2, "at": datetime(2026, 2, 7, 3, 0)})  # naive: taken as UTC
    back = {d["_id"]: d["at"] for d in db.times.find()}
    assert back[1] == datetime(2026, 2, 7, 1, 0, tzinfo=UTC) and back[1].utcoffset() == timedelta(0)
    assert back[2] == datetime(2026, 2, 7, 3, 0, tzinfo=UTC)
    window = {"at": {"$gte": datetime(2026, 2, 7, 2, 30, tzinfo=berlin), "$lt": datetime(2026, 2, 7, 2, 0,
                                                                                            tzinfo=UTC)}}
    assert [d["_id"] for d in db.times.find(window)] == [1]  # the monitor's time window, across offsets


def test_a_ttl_index_is_declared_and_deletes_expired_documents(db: Db) -> None:
    db.claims.create_index("at", expireAfterSeconds=1)
    ttl = [info for info in db.claims.index_information().values() if info["key"] == [("at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 1
    now = datetime.now(UTC)
    db.claims.insert_many([{"_id": "old", "at": now - timedelta(hours=1)},
                           {"_id": "new", "at": now + timedelta(days=1)}])
    deadline = time.monotonic() + 150  # MongoDB's TTL monitor runs once a minute; nx-27017 purges on access
    while db.claims.count_documents({"_id": "old"}) and time.monotonic() < deadline:
        time.sleep(1)
    assert [d["_id"] for d in db.claims.find()] == ["new"]


def test_timeout_ms_bounds_each_operation_not_a_whole_cursor(mongo_uri: str, db: Db) -> None:
    db.cases.insert_many([{"i": i} for i in range(50)])
    quick: Client = MongoClient(mongo_uri, timeoutMS=1000)
    try:
        started, seen = time.monotonic(), 0
        for _ in quick[db.name].cases.find({}, batch_size=10):  # a dump reading batch by batch, slowly
            seen += 1
            if seen % 10 == 0:
                time.sleep(0.3)
        assert seen == 50 and time.monotonic() - started > 1.0
    finally:
        quick.close()


def test_timeout_ms_fails_an_operation_on_a_server_that_stopped_answering(tmp_path: Path) -> None:
    if os.environ.get("TEST_MONGODB_URI"):
        pytest.skip("pauses a server of its own (SIGSTOP), which it starts locally: TEST_MONGODB_URI is set")
    with LocalMongo(tmp_path / "paused") as server:
        paused: Client = MongoClient(server.uri, timeoutMS=1000, serverSelectionTimeoutMS=5000)
        try:
            paused.probe.cases.insert_one({"a": 1})
            os.kill(server.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(PyMongoError) as hung:
                    paused.probe.cases.find_one({})
                took = time.monotonic() - started
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert hung.value.timeout and 0.9 < took < 5
            assert paused.probe.cases.count_documents({}) == 1  # and it answers again once resumed
        finally:
            paused.close()


# ---- found while building the store and the danger zone on nx-27017 ------------------------------------------
@nx_deviation("a date written by $set is stored as text")
def test_a_date_written_by_set_stays_a_date(db: Db) -> None:
    moment = datetime(2026, 2, 7, 3, 0, tzinfo=UTC)
    db.leases.insert_one({"_id": "monitor"})
    db.leases.update_one({"_id": "monitor"}, {"$set": {"expires_at": moment}})
    assert db.leases.find_one({"_id": "monitor"})["expires_at"] == moment  # type: ignore[index]


@nx_deviation("list_collection_names ignores its filter")
def test_list_collection_names_applies_its_filter(db: Db) -> None:
    db.internshipcases.insert_one({})
    db.internship_case_attempts.insert_one({})
    assert db.list_collection_names(filter={"name": {"$in": ["internship_case_attempts", "absent"]}}) == [
        "internship_case_attempts"]


@nx_deviation("counting a collection that does not exist creates it, empty")
def test_counting_a_missing_collection_gives_0_and_creates_nothing(db: Db) -> None:
    db.internshipcases.insert_one({})
    assert db.internship_case_attempts.count_documents({}) == 0
    assert db.list_collection_names() == ["internshipcases"]


@nx_deviation("a $count facet over no documents gives [{n: 0}] instead of []")
def test_a_count_facet_over_nothing_is_empty(db: Db) -> None:
    db.cases.insert_one({"title": "x"})
    rows = list(db.cases.aggregate([{"$facet": {"none": [{"$match": {"step": {"$exists": True}}}, {"$count": "n"}]}}]))
    assert rows[0]["none"] == []


def test_union_with_counts_other_collections_in_the_same_aggregation_each_tagged(db: Db) -> None:
    """The cleanup's re-check: one command counts the cases and every collection to drop."""
    db.cases.insert_many([{"step": 1}, {"title": "x"}])
    db.attempts.insert_many([{"n": i} for i in range(3)])
    pipeline = [{"$match": {"step": {"$exists": True}}}, {"$count": "n"},
                {"$unionWith": {"coll": "attempts", "pipeline": [
                    {"$count": "n"}, {"$addFields": {"tag": {"$literal": "attempts"}}}]}}]
    rows = sorted(db.cases.aggregate(pipeline), key=lambda row: row.get("tag", ""))
    assert [{k: v for k, v in row.items() if k != "_id"} for row in rows] == [{"n": 1}, {"n": 3, "tag": "attempts"}]


@nx_deviation("$count over no documents gives {n: 0} instead of no document")
def test_a_count_over_nothing_gives_no_document(db: Db) -> None:
    db.cases.insert_one({"title": "x"})
    db.create_collection("empty")
    assert list(db.cases.aggregate([{"$match": {"step": {"$exists": True}}}, {"$count": "n"}])) == []
    assert list(db.cases.aggregate([{"$match": {"step": {"$exists": True}}},
                                    {"$unionWith": {"coll": "empty", "pipeline": [{"$count": "n"}]}}])) == []


@nx_deviation("a $facet followed by a $unionWith is computed batch by batch: a list of partial counts")
def test_a_facet_followed_by_union_with_counts_the_whole_collection(db: Db) -> None:
    db.cases.insert_many([{"step": n} if n % 4 == 0 else {"title": n} for n in range(1000)])
    db.other.insert_one({"attempt": 1})
    rows = list(db.cases.aggregate([{"$facet": {"n": [{"$match": {"step": {"$exists": True}}}, {"$count": "n"}]}},
                                    {"$unionWith": {"coll": "other", "pipeline": [{"$count": "n"}]}}]))
    assert rows[0]["n"] == [{"n": 250}]
