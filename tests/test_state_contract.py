"""The TaskStore contract: the same tests, unchanged, on MemoryTaskStore and SQLiteTaskStore."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from flowlord.state import (
    LeaseLost,
    NewRecord,
    StoreError,
    TaskFilter,
    TaskStore,
    UnknownRecord,
)
from tests.conftest import START, Clock
from workflow import Result, Task
from workflow.state import ENDS, IllegalTransition, Origin, State


def new(
    key: str,
    *,
    state: State = State.QUEUED,
    run: str = "run1",
    type: str = "extract",
    job: str = "",
    info: str = "",
    attempt: int = 0,
    workflow: str = "f1.toml",
    origin: Origin = Origin.CRON,
    due: datetime | None = None,
    deadline: datetime | None = None,
) -> NewRecord:
    task = Task(type=type, job=job, info=info, id=run, meta=f"workflow={workflow}")
    phase = f"{type}:{job}" if job else type
    return NewRecord(
        task=task, workflow=workflow, phase=phase, attempt=attempt, origin=origin,
        origin_key=key, state=state, due=due, deadline=deadline,
    )  # fmt: skip


def snapshot(store: TaskStore) -> tuple:
    """Everything a store shows, to check that a refused write changed nothing."""
    records = store.tasks(TaskFilter(limit=10_000))
    moves = {r.rec: store.transitions(r.rec) for r in records}
    return records, moves, store.alerts(limit=10_000), store.marks("f1.toml"), store.lease()


def add(store: TaskStore, *records: NewRecord) -> list[int | None]:
    with store.transaction() as tx:
        return [r.rec if r else None for r in tx.add(records, actor="test", reason="made")]


def test_add_creates_records_in_order_with_an_audit(store: TaskStore, clock: Clock) -> None:
    recs = add(store, new("k1"), new("k2", job="j", info="?day=1", state=State.HELD))
    assert recs[0] is not None and recs[1] is not None and recs[1] > recs[0]
    first, second = store.get(recs[0]), store.get(recs[1])
    assert (first.state, first.origin, first.origin_key, first.workflow) == (
        State.QUEUED, Origin.CRON, "k1", "f1.toml",
    )  # fmt: skip
    assert (second.job, second.info, second.phase, second.name) == (
        "j",
        "?day=1",
        "extract:j",
        "extract:j",
    )
    assert first.created == first.updated == START and first.sent is None and first.ended is None
    assert first.task() == Task(
        type="extract", id="run1", meta="workflow=f1.toml", created="2026-11-21T12:00:00Z"
    )
    [audit] = store.transitions(recs[1])
    assert (audit.from_state, audit.to_state, audit.actor, audit.reason, audit.at) == (
        None, State.HELD, "test", "made", START,
    )  # fmt: skip


def test_an_origin_key_creates_one_record(store: TaskStore) -> None:
    [rec] = add(store, new("k1"))
    assert add(store, new("k1"), new("k2"), new("k2")) == [None, rec + 1, None]
    assert [r.origin_key for r in store.tasks()] == ["k2", "k1"]
    assert len(store.transitions(rec)) == 1


def test_a_record_born_sent_was_sent_now(store: TaskStore) -> None:
    [rec] = add(store, new("ext", state=State.SENT, origin=Origin.EXTERNAL))
    assert store.get(rec).sent == START


@pytest.mark.parametrize("state", sorted(ENDS))
def test_add_refuses_a_finished_birth_and_writes_nothing(store: TaskStore, state: State) -> None:
    add(store, new("before"))
    before = snapshot(store)
    with store.transaction() as tx, pytest.raises(IllegalTransition, match="a new record"):
        tx.add([new("ok"), new("bad", state=state)], actor="test", reason="made")
    assert snapshot(store) == before


def test_a_waiting_record_needs_a_due_time(store: TaskStore) -> None:
    with store.transaction() as tx, pytest.raises(StoreError, match="'w' needs a due time"):
        tx.add([new("w", state=State.WAITING)], actor="test", reason="retry")
    assert store.tasks() == []


def test_move_sets_fields_and_times_and_audits(store: TaskStore, clock: Clock) -> None:
    [rec] = add(store, new("k1"))
    sent_at = clock.advance(seconds=5)
    deadline = sent_at + timedelta(hours=4)
    with store.transaction() as tx:
        sent = tx.move(rec, State.SENT, actor="outbox", reason="on the bus", deadline=deadline)
    assert (sent.state, sent.sent, sent.deadline, sent.updated) == (
        State.SENT, sent_at, deadline, sent_at,
    )  # fmt: skip
    done_at = clock.advance(seconds=10)
    started = sent_at + timedelta(seconds=1)
    with store.transaction() as tx:
        done = tx.move(
            rec, State.COMPLETE, actor="done", reason="result complete",
            result=Result.COMPLETE, msg="ok", started=started,
        )  # fmt: skip
    assert done == store.get(rec)
    assert (done.result, done.msg, done.started, done.ended, done.sent, done.updated) == (
        "complete", "ok", started, done_at, sent_at, done_at,
    )  # fmt: skip
    moves = [(t.from_state, t.to_state, t.actor, t.reason, t.at) for t in store.transitions(rec)]
    assert moves == [
        (None, State.QUEUED, "test", "made", START),
        (State.QUEUED, State.SENT, "outbox", "on the bus", sent_at),
        (State.SENT, State.COMPLETE, "done", "result complete", done_at),
    ]  # fmt: skip


def test_move_keeps_given_times(store: TaskStore) -> None:
    [rec] = add(store, new("k1"))
    at = START - timedelta(minutes=3)
    with store.transaction() as tx:
        tx.move(rec, State.SENT, actor="a", reason="r", sent=at)
        moved = tx.move(rec, State.WARNED, actor="a", reason="r", ended=at, result="warn")
    assert (moved.sent, moved.ended, moved.result) == (at, at, "warn")


def test_moving_an_unknown_record_writes_nothing(store: TaskStore) -> None:
    [rec] = add(store, new("k1"))
    before = snapshot(store)
    with store.transaction() as tx:
        with pytest.raises(UnknownRecord, match="rec 999") as raised:
            tx.move(999, State.SENT, actor="a", reason="r")
        assert raised.value.rec == 999
        tx.move(rec, State.SENT, actor="a", reason="still usable")
    records, moves, *rest = snapshot(store)
    assert [r.state for r in records] == [State.SENT] and len(moves[rec]) == 2
    assert rest == list(before[2:])


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([State.SENT, State.COMPLETE], State.SENT),  # a finished record moved again
        ([State.CANCELLED], State.COMPLETE),  # a cancelled record completed by a done
        ([State.SENT, State.COMPLETE], State.COMPLETE),  # a done delivered twice
        ([], State.WAITING),  # a queued record cannot wait
    ],
)
def test_an_illegal_move_writes_nothing(
    store: TaskStore, path: list[State], illegal: State
) -> None:
    [rec] = add(store, new("k1"))
    with store.transaction() as tx:
        for state in path:
            tx.move(rec, state, actor="a", reason="r")
    before = snapshot(store)
    with store.transaction() as tx:
        with pytest.raises(IllegalTransition, match=f"record {rec} cannot go") as raised:
            tx.move(rec, illegal, actor="a", reason="r", msg="x", result="complete")
        assert (raised.value.rec, raised.value.to_state) == (rec, illegal)
        tx.alert("alert", "the transaction goes on", rec=rec)
    records, moves, alerts, *_ = snapshot(store)
    assert (records, moves) == (before[0], before[1])
    assert [a.message for a in alerts] == ["the transaction goes on"]


def test_a_move_from_a_record_at_hand_is_judged_as_the_row_is(store: TaskStore) -> None:
    """`current` spares a read; a stale one (the row moved since) is not trusted."""
    [rec] = add(store, new("k1"))
    queued = store.get(rec)
    with store.transaction() as tx:
        sent = tx.move(rec, State.SENT, actor="a", reason="r", current=queued)
        assert sent.state == State.SENT
        tx.move(rec, State.CANCELLED, actor="cli", reason="stop", current=sent)
    with store.transaction() as tx, pytest.raises(IllegalTransition, match="cancelled to complete"):
        tx.move(rec, State.COMPLETE, actor="a", reason="r", current=sent)  # stale: sent
    assert store.get(rec).state == State.CANCELLED
    assert [t.to_state for t in store.transitions(rec)] == [
        State.QUEUED, State.SENT, State.CANCELLED,
    ]  # fmt: skip


def test_move_all_moves_a_batch_and_refuses_what_changed_meanwhile(
    store: TaskStore, clock: Clock
) -> None:
    recs = add(store, new("k1"), new("k2"), new("k3"))
    at_hand = [store.get(rec) for rec in recs if rec is not None]
    with store.transaction() as tx:  # the CLI cancels k2 between the read and the batch
        tx.move(at_hand[1].rec, State.CANCELLED, actor="cli", reason="stop")
    deadlines = [START + timedelta(hours=n) for n in (1, 2, 3)]
    with store.transaction() as tx:
        refused = tx.move_all(at_hand, State.SENT, actor="outbox", reason="sent",
                              deadlines=deadlines)  # fmt: skip
    assert refused == [at_hand[1].rec]
    first, second, third = (store.get(r.rec) for r in at_hand)
    assert (first.state, first.sent, first.deadline) == (State.SENT, START, deadlines[0])
    assert (third.state, third.deadline) == (State.SENT, deadlines[2])
    assert second.state == State.CANCELLED
    assert [t.reason for t in store.transitions(first.rec)] == ["made", "sent"]
    assert [t.reason for t in store.transitions(second.rec)] == ["made", "stop"]


def test_an_exception_rolls_the_transaction_back(store: TaskStore) -> None:
    [rec] = add(store, new("k1"))
    before = snapshot(store)
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        tx.add([new("k2")], actor="a", reason="r")
        tx.move(rec, State.SENT, actor="a", reason="r")
        tx.alert("failed", "lost", rec=rec)
        tx.set_mark("f1.toml", "extract", START)
        raise RuntimeError("boom")
    assert snapshot(store) == before
    assert add(store, new("k3")) == [rec + 1]  # the rolled back rec is given again, as in SQLite


def test_savepoints_roll_back_alone_and_nest(store: TaskStore) -> None:
    [rec] = add(store, new("k1"))
    with store.transaction() as tx:
        with tx.savepoint():
            tx.move(rec, State.SENT, actor="a", reason="kept")
        with pytest.raises(ValueError, match="bad message"), tx.savepoint():
            tx.move(rec, State.COMPLETE, actor="a", reason="undone")
            tx.add([new("k2")], actor="a", reason="undone")
            raise ValueError("bad message")
        with tx.savepoint():
            tx.add([new("k3")], actor="a", reason="kept")
            with pytest.raises(IllegalTransition), tx.savepoint():
                tx.set_mark("f1.toml", "extract", START)
                tx.move(rec, State.QUEUED, actor="a", reason="illegal")
        assert tx.get(rec).state is State.SENT
    assert [(r.origin_key, r.state) for r in store.tasks()] == [
        ("k3", State.QUEUED), ("k1", State.SENT),
    ]  # fmt: skip
    assert [t.reason for t in store.transitions(rec)] == ["made", "kept"]
    assert store.marks("f1.toml") == {}


def test_a_transaction_cannot_nest_or_outlive_itself(store: TaskStore) -> None:
    with store.transaction() as tx:
        with pytest.raises(StoreError, match="already open"), store.transaction():
            pass
        tx.add([new("k1")], actor="a", reason="r")
        for write in (lambda: store.acquire("a", ttl=1), lambda: store.purge(START)):
            with pytest.raises(StoreError, match="already open"):
                write()
    with pytest.raises(StoreError, match="transaction is over"):
        tx.add([new("k2")], actor="a", reason="r")
    assert [r.origin_key for r in store.tasks()] == ["k1"]
    assert store.lease() is None


def test_find_attempt_matches_the_done_message(store: TaskStore) -> None:
    add(store, new("a0", job="j", info="?x=1"), new("a1", job="j", info="?x=1", attempt=1))
    [newest] = add(store, new("again", job="j", info="?x=1", attempt=1))
    with store.transaction() as tx:
        found = tx.find_attempt("run1", "extract", "j", "?x=1", 1)
        assert found is not None and found.rec == newest
        assert tx.find_attempt("run1", "extract", "j", "?x=1", 0) is not None
        for miss in [("run2", "extract", "j", "?x=1", 0), ("run1", "extract", "", "?x=1", 0),
                     ("run1", "extract", "j", "?x=2", 0), ("run1", "load", "j", "?x=1", 0),
                     ("run1", "extract", "j", "?x=1", 2)]:  # fmt: skip
            assert tx.find_attempt(*miss) is None


def test_completed_names_the_run_s_complete_records(store: TaskStore) -> None:
    recs = add(
        store, new("1"), new("2", type="load", job="j"), new("3", type="load", job="k"),
        new("4", type="other", run="run2"), new("5", type="far", workflow="f2.toml"),
    )  # fmt: skip
    with store.transaction() as tx:
        for rec in recs[:2] + recs[3:]:
            assert rec is not None
            tx.move(rec, State.COMPLETE, actor="a", reason="r")
        assert tx.completed("f1.toml", "run1") == {"extract", "load:j"}
        assert tx.completed("f2.toml", "run1") == {"far"}
        assert tx.completed("f1.toml", "nope") == set()


def test_alerts_newest_first_by_kind_and_since(store: TaskStore, clock: Clock) -> None:
    [rec] = add(store, new("k1"))
    with store.transaction() as tx:
        first = tx.alert("failed", "one", workflow="f1.toml", phase="extract", rec=rec)
        clock.advance(minutes=1)
        second = tx.alert("bad_message", "two")
        third = tx.alert("failed", "three")
    assert second > first and third > second
    assert [a.seq for a in store.alerts()] == [third, second, first]
    one = store.alerts(kind="failed", limit=1)[0]
    assert (one.seq, one.message, one.rec, one.notified) == (third, "three", None, None)
    assert [a.message for a in store.alerts(since=clock())] == ["three", "two"]
    assert store.alerts(kind="failed", since=START)[1].workflow == "f1.toml"
    assert store.stats().alerts == 3


def test_alerts_refuse_an_unknown_kind_or_record(store: TaskStore) -> None:
    with store.transaction() as tx:
        with pytest.raises(StoreError, match="unknown alert kind 'oops'"):
            tx.alert("oops", "x")
        with pytest.raises(UnknownRecord, match="rec 42"):
            tx.alert("failed", "x", rec=42)
    assert store.alerts() == []


def test_due_sends_queued_then_ripe_waiting(store: TaskStore, clock: Clock) -> None:
    later, soon = START + timedelta(minutes=10), START + timedelta(minutes=5)
    recs = add(
        store, new("w1", state=State.WAITING, due=later), new("q1"),
        new("w2", state=State.WAITING, due=soon), new("h", state=State.HELD), new("q2"),
        new("w3", state=State.WAITING, due=START),
    )  # fmt: skip
    assert [r.origin_key for r in store.due()] == ["q1", "q2", "w3"]
    clock.advance(minutes=10)
    assert [r.origin_key for r in store.due()] == ["q1", "q2", "w3", "w2", "w1"]
    assert [r.origin_key for r in store.due(limit=3)] == ["q1", "q2", "w3"]
    assert [r.origin_key for r in store.due(limit=1)] == ["q1"]
    with store.transaction() as tx:
        tx.move(recs[1] or 0, State.SENT, actor="a", reason="r")
    assert [r.origin_key for r in store.due(limit=2)] == ["q2", "w3"]


def test_stuck_lists_late_sent_records_until_alerted(store: TaskStore, clock: Clock) -> None:
    recs = add(
        store, new("a", state=State.SENT, deadline=START + timedelta(hours=2)),
        new("b", state=State.SENT, deadline=START + timedelta(hours=1)),
        new("c", state=State.SENT), new("d", deadline=START),
    )  # fmt: skip
    assert store.stuck() == []
    clock.advance(hours=2)
    assert [r.origin_key for r in store.stuck()] == ["b", "a"]
    with store.transaction() as tx:
        tx.alert("failed", "not stuck", rec=recs[1])
        tx.alert("stuck", "no done", rec=recs[1])
    assert [r.origin_key for r in store.stuck(limit=5)] == ["a"]
    assert store.stuck(limit=0) == []


def test_cron_marks_are_upserted(store: TaskStore) -> None:
    with store.transaction() as tx:
        tx.set_mark("f1.toml", "extract", START)
        tx.set_mark("f1.toml", "load", START)
        tx.set_mark("f2.toml", "extract", START)
        tx.set_mark("f1.toml", "extract", START + timedelta(hours=1))
    assert store.marks("f1.toml") == {"extract": START + timedelta(hours=1), "load": START}
    assert store.marks("none") == {}


def test_the_lease_is_taken_renewed_refused_and_released(store: TaskStore, clock: Clock) -> None:
    assert store.lease() is None
    mine = store.acquire("a", ttl=10)
    assert (mine.holder, mine.expires, mine.acquired) == ("a", START + timedelta(seconds=10), START)
    clock.advance(seconds=4)
    assert store.acquire("b", ttl=10) == mine  # another holder's, unchanged
    renewed = store.acquire("a", ttl=10)
    assert (renewed.expires, renewed.acquired) == (clock() + timedelta(seconds=10), START)
    store.release("b")
    assert store.lease() == renewed
    clock.advance(seconds=10)  # expired exactly now
    taken = store.acquire("b", ttl=30)
    assert (taken.holder, taken.acquired) == ("b", clock())
    store.release("b")
    assert store.lease() is None
    with pytest.raises(StoreError, match="positive ttl"):
        store.acquire("a", ttl=0)


def test_a_leader_s_transaction_checks_the_lease(store: TaskStore, clock: Clock) -> None:
    with (
        pytest.raises(LeaseLost, match=r"a no longer holds the lease \(it is free"),
        store.transaction(leader="a") as tx,
    ):
        tx.add([new("k0")], actor="a", reason="r")
    store.acquire("a", ttl=10)
    with store.transaction(leader="a") as tx:
        tx.add([new("k1")], actor="a", reason="r")
    clock.advance(seconds=10)
    store.acquire("b", ttl=10)
    before = snapshot(store)
    with pytest.raises(LeaseLost, match="held by b"), store.transaction(leader="a") as tx:
        tx.add([new("k2")], actor="a", reason="r")
    assert snapshot(store) == before
    clock.advance(days=400)  # everything is old enough to purge, but not by a former leader
    with store.transaction() as tx:
        tx.move(1, State.CANCELLED, actor="a", reason="r")
    before = snapshot(store)
    with pytest.raises(LeaseLost, match="held by b"):
        store.purge(clock.at, leader="a")
    assert snapshot(store) == before


def test_own_writes_are_not_changes(store: TaskStore) -> None:
    assert store.changed() is False
    add(store, new("k1"))
    store.acquire("a", ttl=10)
    assert store.changed() is False


def test_tasks_filters_combine_newest_first(store: TaskStore, clock: Clock) -> None:
    add(store, new("1", type="load", job="j", run="r1"))
    clock.advance(hours=1)
    add(store, new("2", type="load", job="k", run="r2", workflow="f2.toml"))
    clock.advance(hours=1)
    recs = add(store, new("3", type="extract", run="r2"), new("4", type="load", job="j", run="r2"))
    with store.transaction() as tx:
        tx.move(recs[0] or 0, State.SENT, actor="a", reason="r")

    def keys(**where: object) -> list[str]:
        return [r.origin_key for r in store.tasks(TaskFilter(**where))]  # type: ignore[arg-type]

    assert keys() == ["4", "3", "2", "1"]
    assert keys(type="load") == ["4", "2", "1"]
    assert keys(type="load", job="j") == ["4", "1"]
    assert keys(job="k") == ["2"]
    assert keys(state=State.SENT) == ["3"]
    assert keys(state=State.QUEUED, id="r2") == ["4", "2"]
    assert keys(workflow="f2.toml") == ["2"]
    assert keys(id="r1") == ["1"]
    assert keys(since=START + timedelta(hours=1)) == ["4", "3", "2"]
    assert keys(until=START + timedelta(hours=1)) == ["1"]
    assert keys(since=START, until=START + timedelta(hours=2), type="load") == ["2", "1"]
    assert keys(limit=2) == ["4", "3"]
    page = store.tasks(TaskFilter(limit=2))
    assert keys(limit=2, before=page[-1].rec) == ["2", "1"]
    assert keys(type="load", before=page[0].rec) == ["2", "1"]
    assert keys(limit=0) == []
    with pytest.raises(StoreError, match="limit must not be negative"):
        store.tasks(TaskFilter(limit=-1))


def test_run_and_transitions_in_order(store: TaskStore) -> None:
    recs = add(store, new("1", run="r1"), new("2", run="r2"), new("3", run="r1", type="load"))
    assert [r.rec for r in store.run("r1")] == [recs[0], recs[2]]
    assert store.run("nope") == [] and store.transitions(999) == []


def test_stats_count_states_and_ages(store: TaskStore, clock: Clock) -> None:
    for age, key in [(timedelta(days=40), "old"), (timedelta(days=30), "30d-edge"),
                     (timedelta(days=10), "10d"), (timedelta(days=7), "7d-edge"),
                     (timedelta(days=2), "2d"), (timedelta(hours=24), "24h-edge"),
                     (timedelta(hours=1), "1h")]:  # fmt: skip
        clock.at = START - age
        add(store, new(key))
    clock.at = START
    [rec] = add(store, new("now", state=State.SENT))
    with store.transaction() as tx:
        tx.move(rec, State.FAILED, actor="a", reason="r")
        tx.alert("failed", "x", rec=rec)
    stats = store.stats()
    assert stats.states == {s.value: 0 for s in State} | {"queued": 7, "failed": 1}
    assert stats.by_age == {"24h": 2, "7d": 2, "30d": 2, "older": 2}
    assert stats.alerts == 1
    assert isinstance(stats.db_bytes, int)


def test_counts_are_by_workflow_and_state_in_key_order(store: TaskStore) -> None:
    add(store, new("a1", workflow="b.toml"), new("a2", workflow="b.toml", state=State.HELD),
        new("a3", workflow="a.toml"), new("a4", workflow="b.toml"))  # fmt: skip
    [sent] = add(store, new("a5", workflow="a.toml", state=State.SENT))
    with store.transaction() as tx:
        tx.move(sent or 0, State.COMPLETE, actor="a", reason="r")
    counts = store.counts()
    assert counts == {"a.toml": {"complete": 1, "queued": 1}, "b.toml": {"held": 1, "queued": 2}}
    assert list(counts) == ["a.toml", "b.toml"]
    assert [list(states) for states in counts.values()] == [["complete", "queued"],
                                                            ["held", "queued"]]  # fmt: skip


def test_counts_since_is_inclusive_on_created(store: TaskStore, clock: Clock) -> None:
    for age, key in [(timedelta(hours=25), "old"), (timedelta(hours=24), "edge"),
                     (timedelta(hours=1), "young")]:  # fmt: skip
        clock.at = START - age
        add(store, new(key))
    clock.at = START
    assert store.counts(since=START - timedelta(hours=24)) == {"f1.toml": {"queued": 2}}
    elsewhere = (START - timedelta(hours=24)).astimezone(timezone(timedelta(hours=-5)))
    assert store.counts(since=elsewhere) == {"f1.toml": {"queued": 2}}  # the same instant
    later = START - timedelta(hours=24) + timedelta(microseconds=1)
    assert store.counts(since=later) == {"f1.toml": {"queued": 1}}
    assert store.counts(since=START + timedelta(seconds=1)) == {}
    assert store.counts(since=None) == store.counts() == {"f1.toml": {"queued": 3}}


def test_counts_of_an_empty_store_are_empty(store: TaskStore) -> None:
    assert store.counts() == {}
    assert store.counts(since=START - timedelta(days=1)) == {}


def test_counts_put_ad_hoc_records_under_the_empty_workflow(store: TaskStore) -> None:
    add(store, new("cron"), new("adhoc1", workflow="", origin=Origin.EXTERNAL),
        new("adhoc2", workflow="", origin=Origin.MANUAL, state=State.HELD))  # fmt: skip
    counts = store.counts()
    assert counts == {"": {"held": 1, "queued": 1}, "f1.toml": {"queued": 1}}
    assert list(counts) == ["", "f1.toml"]
    totals = {state: n for state, n in store.stats().states.items() if n}
    assert totals == {"held": 1, "queued": 2}


def test_purge_deletes_finished_records_and_old_alerts_in_batches(
    store: TaskStore, clock: Clock
) -> None:
    clock.at = START - timedelta(days=100)
    recs = add(store, *[new(f"old{i}") for i in range(5)], new("still-queued"))
    with store.transaction() as tx:
        for rec in recs[:5]:
            tx.move(rec or 0, State.CANCELLED, actor="a", reason="r")
        tx.alert("failed", "old", rec=recs[0])
        tx.alert("stuck", "old too")
    clock.at = START
    [kept] = add(store, new("new"))
    with store.transaction() as tx:
        tx.move(kept or 0, State.COMPLETE, actor="a", reason="r")
        young = tx.alert("failed", "young", rec=recs[4])
    cutoff = START - timedelta(days=90)
    # batch 2: both old alerts, then 2 records with their 2 transitions each
    assert store.purge(cutoff, batch=2) == 2 + 2 * 3
    assert store.purge(cutoff, batch=2) == 2 * 3
    assert store.purge(cutoff, batch=2) == 3  # the last one; its young alert stays, rec None
    assert store.purge(cutoff, batch=2) == 0
    assert [r.origin_key for r in store.tasks()] == ["new", "still-queued"]
    [alert] = store.alerts()
    assert (alert.seq, alert.rec) == (young, None)
    assert store.transitions(recs[0] or 0) == []


def test_purge_never_frees_a_rec_for_reuse(store: TaskStore, clock: Clock) -> None:
    recs = add(store, new("a"), new("b"))
    with store.transaction() as tx:
        tx.move(recs[1] or 0, State.CANCELLED, actor="a", reason="r")
    clock.advance(days=1)
    assert store.purge(clock()) == 1 + 2  # the newest record, with its two transitions
    assert add(store, new("c")) == [(recs[1] or 0) + 1]


def test_purge_keeps_a_record_updated_or_created_since(store: TaskStore, clock: Clock) -> None:
    clock.at = START - timedelta(days=100)
    [early] = add(store, new("early"))
    clock.at = START
    [late] = add(store, new("late"))
    clock.at = START - timedelta(days=100)  # a clock stepped back: updated before created
    with store.transaction() as tx:
        tx.move(late or 0, State.CANCELLED, actor="a", reason="r")
    clock.at = START
    with store.transaction() as tx:
        tx.move(early or 0, State.CANCELLED, actor="a", reason="r")
    assert store.purge(START - timedelta(days=90)) == 0
    assert len(store.tasks()) == 2


def test_a_reader_never_sees_half_a_transaction(store: TaskStore) -> None:
    seen: list[int] = []
    reader = threading.Thread(target=lambda: seen.append(len(store.tasks())))
    with pytest.raises(RuntimeError, match="undone"), store.transaction() as tx:
        tx.add([new("k1")], actor="a", reason="r")
        reader.start()
        reader.join(timeout=0.2)
        assert reader.is_alive(), "the reader did not wait for the transaction"
        raise RuntimeError("undone")
    reader.join(timeout=10)
    assert seen == [0]
