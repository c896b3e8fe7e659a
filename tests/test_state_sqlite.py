"""What only SQLiteTaskStore does: the file, its schema and version, other connections on it
(another store, the cache, raw SQL), corrupted rows and query plans."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import apsw
import pytest

from cache import SchemaError, SQLiteCache
from cache.schema import SCHEMA_VERSION as CACHE_VERSION
from flowlord.state import (
    CorruptRecord,
    LeaseLost,
    SQLiteTaskStore,
    TaskFilter,
    TaskStore,
    UnknownRecord,
)
from flowlord.state import queries as q
from flowlord.state.schema import SCHEMA_VERSION
from tests.conftest import START, Clock, write
from tests.test_state_contract import new, snapshot
from workflow.state import IllegalTransition, State

TABLES = {
    "task_records": "rec id type job info meta workflow phase attempt origin origin_key state "
    "result msg created due sent started ended deadline updated",
    "task_transitions": "rec from_state to_state reason actor at",
    "alert_records": "seq at kind workflow phase rec message notified",
    "cron_marks": "workflow phase fired",
    "leader_lease": "one holder expires acquired",
    "schema_versions": "component version",
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "flowlord.db"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[SQLiteTaskStore]:
    made = SQLiteTaskStore(db, now=clock)
    yield made
    made.close()


@pytest.fixture
def raw(store: SQLiteTaskStore, db: Path) -> Iterator[apsw.Connection]:
    """Another connection on the file, as the sqlite3 shell or another process would have."""
    connection = apsw.Connection(str(db))
    connection.set_busy_timeout(5000)
    yield connection
    connection.close()


def add(store: TaskStore, *records: object) -> list[int | None]:
    with store.transaction() as tx:
        return [r.rec if r else None for r in tx.add(records, actor="test", reason="made")]  # type: ignore[arg-type]


def rows(connection: apsw.Connection, table: str) -> list[tuple]:
    return connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()


def test_tables_columns_and_version(store: SQLiteTaskStore, raw: apsw.Connection) -> None:
    for table, columns in TABLES.items():
        found = [row[1] for row in raw.execute(f"PRAGMA table_info({table})")]
        assert found == columns.split(), table
    assert rows(raw, "schema_versions") == [("task_state", SCHEMA_VERSION)]
    assert raw.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    assert raw.execute("PRAGMA user_version").fetchall() == [(0,)]  # the cache's, untouched


def test_times_are_fixed_width_utc_text(store: SQLiteTaskStore, raw: apsw.Connection) -> None:
    plus_two = timezone(timedelta(hours=2))
    due = datetime(2026, 11, 21, 15, 30, 1, 5, tzinfo=plus_two)
    [rec] = add(store, new("w", state=State.WAITING, due=due))
    [(created, stored_due)] = raw.execute("SELECT created, due FROM task_records").fetchall()
    assert (created, stored_due) == ("2026-11-21T12:00:00.000000Z", "2026-11-21T13:30:01.000005Z")
    record = store.get(rec or 0)
    assert record.due == due and record.due.tzinfo == UTC
    with store.transaction() as tx, pytest.raises(ValueError, match="naive"):
        tx.set_mark("f1.toml", "extract", datetime(2026, 11, 21))


def test_everything_persists_across_reopen(db: Path, clock: Clock) -> None:
    first = SQLiteTaskStore(db, now=clock)
    [rec] = add(first, new("k1", deadline=START))
    with first.transaction() as tx:
        tx.move(rec or 0, State.SENT, actor="a", reason="r")
        tx.alert("stuck", "late", rec=rec)
        tx.set_mark("f1.toml", "extract", START)
    first.acquire("a", ttl=10)
    before = snapshot(first)
    first.close()
    second = SQLiteTaskStore(db, now=clock)
    try:
        assert snapshot(second) == before
        assert add(second, new("k2")) == [(rec or 0) + 1]
    finally:
        second.close()


def test_a_newer_database_is_refused(db: Path, clock: Clock) -> None:
    SQLiteTaskStore(db, now=clock).close()
    connection = apsw.Connection(str(db))
    connection.execute("UPDATE schema_versions SET version = 99 WHERE component = 'task_state'")
    connection.close()
    pattern = rf"schema_versions gives component 'task_state' version 99; .* up to {SCHEMA_VERSION}"
    with pytest.raises(SchemaError, match=pattern):
        SQLiteTaskStore(db, now=clock)


def test_a_file_that_is_not_sqlite_is_refused(db: Path, clock: Clock) -> None:
    db.write_bytes(b"not a database, just some bytes that go on " * 100)
    with pytest.raises(SchemaError, match="not a flowlord SQLite database"):
        SQLiteTaskStore(db, now=clock)
    assert db.read_bytes().startswith(b"not a database")


def test_bad_settings_are_refused(db: Path, clock: Clock, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be one of FULL, NORMAL"):
        SQLiteTaskStore(db, now=clock, synchronous="OFF")
    with pytest.raises(IsADirectoryError):
        SQLiteTaskStore(tmp_path, now=clock)


@pytest.mark.parametrize("store_first", [True, False])
def test_the_cache_and_the_store_share_the_file(
    db: Path, clock: Clock, tmp_path: Path, store_first: bool
) -> None:
    folder = tmp_path / "workflows"
    write(folder, "f1.toml", '[[Phase]]\ntask = "extract"\nrule = "cron=0 0 * * *"\n')
    store = SQLiteTaskStore(db, now=clock) if store_first else None
    cache = SQLiteCache(folder, db)
    store = store or SQLiteTaskStore(db, now=clock)
    try:
        assert cache.refresh() == ["f1.toml"]
        add(store, new("k1"))
        assert cache.search("extract")[0] == "f1.toml"
        assert [r.origin_key for r in store.tasks()] == ["k1"]
    finally:
        cache.close()
        store.close()
    connection = apsw.Connection(str(db))
    assert connection.execute("PRAGMA user_version").fetchall() == [(CACHE_VERSION,)]
    assert rows(connection, "schema_versions") == [("task_state", SCHEMA_VERSION)]
    connection.close()


def test_refused_moves_leave_every_table_as_it_was(
    store: SQLiteTaskStore, raw: apsw.Connection
) -> None:
    recs = add(store, new("done"), new("cancelled"))
    with store.transaction() as tx:
        tx.move(recs[0] or 0, State.SENT, actor="a", reason="r")
        tx.move(recs[0] or 0, State.COMPLETE, actor="a", reason="r")
        tx.move(recs[1] or 0, State.CANCELLED, actor="a", reason="r")
    before = {table: rows(raw, table) for table in TABLES}
    with store.transaction() as tx:
        for rec, to in [(recs[0], State.SENT), (recs[1], State.COMPLETE), (99, State.SENT)]:
            with pytest.raises((IllegalTransition, UnknownRecord)):
                tx.move(rec or 0, to, actor="a", reason="refused", result="complete")
    assert {table: rows(raw, table) for table in TABLES} == before


CHILD = """
import sys
from datetime import UTC, datetime
from cache import SQLiteCache
from flowlord.state import NewRecord, SQLiteTaskStore
from workflow import Task
from workflow.state import Origin, State

folder, db = sys.argv[1:]
cache = SQLiteCache(folder, db)
cache.refresh()
store = SQLiteTaskStore(db, now=lambda: datetime(2026, 11, 21, 12, tzinfo=UTC))
with store.transaction() as tx:
    tx.add([NewRecord(task=Task(type="extract", id="r"), workflow="f1.toml", phase="extract",
                      origin=Origin.MANUAL, origin_key="from the other process",
                      state=State.QUEUED)], actor="cli", reason="retry")
print(store.acquire("other", ttl=60).holder)
store.close()
cache.close()
"""


def test_another_process_opens_the_cache_and_the_store_beside_ours(
    store: SQLiteTaskStore, db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "workflows"
    write(folder, "f1.toml", '[[Phase]]\ntask = "extract"\nrule = "cron=0 0 * * *"\n')
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), str(db)],
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "other\n", "")
    assert store.changed() is True
    assert [r.origin_key for r in store.tasks()] == ["from the other process"]
    assert store.acquire("me", ttl=10).holder == "other"


def test_changed_sees_another_connection_commit(db: Path, clock: Clock) -> None:
    ours, theirs = SQLiteTaskStore(db, now=clock), SQLiteTaskStore(db, now=clock)
    try:
        assert ours.changed() is False
        add(theirs, new("k1"))
        assert ours.changed() is True
        assert ours.changed() is False
        add(ours, new("k2"))
        assert ours.changed() is False
        assert theirs.changed() is True
    finally:
        ours.close()
        theirs.close()


def race(stores: list[SQLiteTaskStore], holders: list[str]) -> dict[str, str]:
    """Each store asks for the lease for its holder at the same instant; who each one got."""
    barrier = threading.Barrier(len(stores))
    got: dict[str, str] = {}

    def ask(store: SQLiteTaskStore, holder: str) -> None:
        barrier.wait()
        got[holder] = store.acquire(holder, ttl=10).holder

    threads = [
        threading.Thread(target=ask, args=pair) for pair in zip(stores, holders, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return got


def test_exactly_one_of_racing_holders_gets_the_lease(db: Path, clock: Clock) -> None:
    stores = [SQLiteTaskStore(db, now=clock) for _ in range(4)]
    try:
        for round_ in range(10):
            got = race(stores, [f"h{round_}-{i}" for i in range(len(stores))])
            assert len(got) == len(stores)
            winners = [holder for holder, lease in got.items() if holder == lease]
            assert len(winners) == 1 and set(got.values()) == set(winners), got
            stores[0].release(winners[0])
    finally:
        for store in stores:
            store.close()


def test_a_leader_whose_lease_was_taken_writes_nothing(db: Path, clock: Clock) -> None:
    leader, successor = SQLiteTaskStore(db, now=clock), SQLiteTaskStore(db, now=clock)
    try:
        leader.acquire("a", ttl=10)
        with leader.transaction(leader="a") as tx:
            tx.add([new("k1")], actor="a", reason="r")
        clock.advance(seconds=11)  # the leader stalled past its lease
        assert successor.acquire("b", ttl=10).holder == "b"
        before = snapshot(successor)
        with pytest.raises(LeaseLost, match="held by b"), leader.transaction(leader="a") as tx:
            tx.add([new("k2")], actor="a", reason="r")
        assert snapshot(successor) == before
    finally:
        leader.close()
        successor.close()


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("state", "bogus", "state is 'bogus', not one of waiting, held"),
        ("created", "yesterday", "created is 'yesterday'"),
        ("due", "2026-11-21 12:00:00", "due is '2026-11-21 12:00:00'"),
        ("origin", "nowhere", "origin is 'nowhere', not one of cron, child"),
        ("attempt", "one", "attempt is 'one'"),
    ],
)
def test_a_corrupted_record_is_named_and_skipped_in_listings(
    store: SQLiteTaskStore,
    raw: apsw.Connection,
    caplog: pytest.LogCaptureFixture,
    column: str,
    value: str,
    problem: str,
) -> None:
    recs = add(store, new("k1"), new("k2"), new("k3"))
    bad = recs[1] or 0
    raw.execute(f"UPDATE task_records SET {column} = ? WHERE rec = ?", (value, bad))
    tables = {table: rows(raw, table) for table in TABLES}
    with pytest.raises(CorruptRecord, match=f"task_records row {bad} cannot be read: {problem}"):
        store.get(bad)
    with caplog.at_level(logging.WARNING, logger="flowlord.state"):
        assert [r.origin_key for r in store.tasks(TaskFilter(limit=2))] == ["k3", "k1"]
        assert [r.origin_key for r in store.due()] == ["k1", "k3"]
        assert [r.origin_key for r in store.run("run1")] == ["k1", "k3"]
    assert f"task_records row {bad} cannot be read" in caplog.text
    with store.transaction() as tx:
        with pytest.raises(CorruptRecord) as raised:
            tx.move(bad, State.SENT, actor="a", reason="r")
        assert (raised.value.table, raised.value.key) == ("task_records", bad)
        moved = tx.move(recs[0] or 0, State.SENT, actor="a", reason="still usable")
    assert moved.state is State.SENT
    after = {table: rows(raw, table) for table in TABLES}
    assert after["task_records"][1:] == tables["task_records"][1:]
    assert after["task_transitions"] == tables["task_transitions"] + [after["task_transitions"][-1]]


def test_corrupted_transitions_alerts_and_marks_are_skipped(
    store: SQLiteTaskStore, raw: apsw.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    [rec] = add(store, new("k1"))
    with store.transaction() as tx:
        tx.move(rec or 0, State.SENT, actor="a", reason="r")
        tx.alert("failed", "one")
        tx.alert("failed", "two")
        tx.set_mark("f1.toml", "a", START)
        tx.set_mark("f1.toml", "b", START)
    raw.execute("UPDATE task_transitions SET to_state = 'x' WHERE from_state = ''")
    raw.execute("UPDATE alert_records SET at = 'then' WHERE message = 'one'")
    raw.execute("UPDATE cron_marks SET fired = 'then' WHERE phase = 'a'")
    raw.execute("UPDATE task_records SET state = 'bogus'")
    with caplog.at_level(logging.WARNING, logger="flowlord.state"):
        assert [t.to_state for t in store.transitions(rec or 0)] == [State.SENT]
        assert [a.message for a in store.alerts()] == ["two"]
        assert store.marks("f1.toml") == {"b": START}
    for named in [
        "task_transitions row 1 (rec 1)",
        "alert_records row 1",
        "cron_marks row f1.toml a",
    ]:
        assert named in caplog.text
    assert store.stats().states["bogus"] == 1


NOT_TABLES = ("SCAN CONSTANT ROW", "SCAN json_each VIRTUAL TABLE")
QUERIES = {
    "get": (q.GET, (1,)),
    "exists": (q.EXISTS, (1,)),
    "find_attempt": (q.FIND_ATTEMPT, ("r", "t", "j", 0, "i")),
    "completed": (q.COMPLETED, ("r", "f1.toml")),
    "run": (q.RUN, ("r",)),
    "due_queued": (q.QUEUED, ()),
    "due_waiting": (q.WAITING, ("x",)),
    "stuck": (q.STUCK, ("x",)),
    "transitions": (q.TRANSITIONS, (1,)),
    "marks": (q.MARKS, ("f1.toml",)),
    "update": (q.update(("result", "msg", "started", "ended", "sent", "deadline")), (None,) * 10),
    "purge_pick": (q.PURGE_PICK, ("x", 500)),
    "purge_alerts": (q.PURGE_ALERTS, ("x", 500)),
    "purge_transitions": (q.PURGE_TRANSITIONS, ("[1]",)),
    "purge_records": (q.PURGE_RECORDS, ("[1]",)),
    "younger": (q.YOUNGER, ("x",)),
    "counts": (q.COUNTS, ("x",)),
}
for _name, _where in {
    "tasks_id": TaskFilter(id="r"),
    "tasks_state": TaskFilter(state=State.SENT),
    "tasks_workflow": TaskFilter(workflow="f1.toml"),
    "tasks_type": TaskFilter(type="t"),
    "tasks_type_job": TaskFilter(type="t", job="j"),
    "tasks_state_before": TaskFilter(state=State.QUEUED, before=10),
}.items():
    QUERIES[_name] = q.tasks_query(_where)
QUERIES["alerts_kind"] = q.alerts_query(None, "stuck")


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_uses_an_index(store: SQLiteTaskStore, raw: apsw.Connection, name: str) -> None:
    sql, params = QUERIES[name]
    details = [row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    scans = [d for d in details if d.startswith("SCAN") and not d.startswith(NOT_TABLES)]
    assert not scans, details
    assert any("USING" in d and ("INDEX" in d or "PRIMARY KEY" in d) for d in details), details


def test_partial_indexes_serve_their_queries(store: SQLiteTaskStore, raw: apsw.Connection) -> None:
    for sql, params, index in [
        (q.WAITING, ("x",), "idx_records_waiting"),
        (q.STUCK, ("x",), "idx_records_sent"),
        (q.PURGE_PICK, ("x", 500), "idx_records_created"),
    ]:
        details = " | ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert index in details and "TEMP B-TREE" not in details, details
