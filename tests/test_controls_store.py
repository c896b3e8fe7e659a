"""Workflow controls in the TaskStore contract (memory and SQLite alike), and the pause and
resume operations the CLI and the API share."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from flowlord import controls
from flowlord.state import SQLiteTaskStore, TaskStore
from tests.conftest import Clock
from tests.test_state_contract import add, new
from workflow.controls import ControlError, Paused
from workflow.state import State

PHASES = {"f1.toml": ["extract", "load"], "f2.toml": ["extract"]}


def phases_of(workflow: str) -> list[str] | None:
    return PHASES.get(workflow)


def held(store: TaskStore, key: str, *, workflow: str = "f1.toml", type: str = "extract") -> int:
    [rec] = add(store, new(key, state=State.HELD, workflow=workflow, type=type))
    assert rec is not None
    return rec


def test_set_control_upserts_the_switch_and_audits_each_change(
    store: TaskStore, clock: Clock
) -> None:
    with store.transaction() as tx:
        assert tx.control("f1.toml", "") is None
        first = tx.set_control("f1.toml", "", enabled=False, reason="deploy", actor="ann")
    clock.advance(seconds=5)
    with store.transaction() as tx:
        second = tx.set_control("f1.toml", "", enabled=True, reason="", actor="bob", released=3)
        assert tx.control("f1.toml", "").enabled is True
    assert (first.from_enabled, first.to_enabled, first.actor) == (None, False, "ann")
    assert (second.from_enabled, second.to_enabled, second.released) == (False, True, 3)
    assert second.seq > first.seq and second.at == first.at + (clock.at - first.at)
    [control] = store.controls()
    assert (control.enabled, control.updated_by, control.updated_at) == (True, "bob", clock.at)
    assert [e.seq for e in store.control_events()] == [second.seq, first.seq]
    assert store.control_events(workflow="f2.toml") == []


def test_a_rolled_back_control_leaves_no_switch_no_event_and_no_stale_pause(
    store: TaskStore,
) -> None:
    assert not store.paused()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_control("f1.toml", "", enabled=False, reason="r", actor="a")
        assert store.paused().holds("f1.toml", "extract") is not None  # seen inside
        raise RuntimeError("undo")
    assert store.controls() == [] and store.control_events() == []
    assert store.paused().holds("f1.toml", "extract") is None


def test_paused_holds_by_workflow_or_by_phase(store: TaskStore) -> None:
    with store.transaction() as tx:
        tx.set_control("f1.toml", "load", enabled=False, reason="r", actor="a")
        tx.set_control("f2.toml", "", enabled=False, reason="r", actor="a")
        tx.set_control("f3.toml", "", enabled=True, reason="", actor="a")
    paused = store.paused()
    assert len(paused) == 2
    assert paused.holds("f1.toml", "load") is not None
    assert paused.holds("f1.toml", "extract") is None
    assert paused.holds("f2.toml", "anything").workflow == "f2.toml"
    assert paused.holds("f3.toml", "x") is None
    assert paused.without("f2.toml", "").holds("f2.toml", "x") is None


def test_held_lists_a_workflows_or_a_phases_held_records_oldest_first(store: TaskStore) -> None:
    a = held(store, "a")
    b = held(store, "b", type="load")
    held(store, "c", workflow="f2.toml")
    add(store, new("d"))  # queued: not held
    with store.transaction() as tx:
        assert [r.rec for r in tx.held("f1.toml")] == [a, b]
        assert [r.rec for r in tx.held("f1.toml", "load")] == [b]


def test_pause_then_resume_releases_held_records_in_creation_order(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f1.toml", reason="maintenance", actor="cli:ann")
    recs = [held(store, key) for key in ("a", "b", "c")]
    other = held(store, "z", workflow="f2.toml")
    event = controls.resume(store, phases_of, "f1.toml", actor="cli:bob")
    assert (event.released, event.discarded, event.actor) == (3, 0, "cli:bob")
    assert [r.rec for r in store.due()] == recs  # queued, oldest first
    assert all(store.transitions(rec)[-1].reason.startswith("released") for rec in recs)
    assert store.get(other).state is State.HELD  # another workflow's stays held


def test_resume_with_discard_held_cancels_them(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f1.toml", reason="r", actor="a")
    rec = held(store, "a")
    event = controls.resume(store, phases_of, "f1.toml", actor="a", discard_held=True)
    assert (event.released, event.discarded) == (0, 1)
    assert store.get(rec).state is State.CANCELLED


def test_a_record_still_held_by_another_pause_stays_held(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f1.toml", reason="all", actor="a")
    controls.pause(store, phases_of, "f1.toml", "load", reason="just load", actor="a")
    extract, load = held(store, "e"), held(store, "l", type="load")
    assert controls.resume(store, phases_of, "f1.toml", "load", actor="a").released == 0
    assert store.get(load).state is State.HELD  # the workflow is still paused
    controls.pause(store, phases_of, "f1.toml", "load", reason="again", actor="a")
    assert controls.resume(store, phases_of, "f1.toml", actor="a").released == 1
    assert (store.get(extract).state, store.get(load).state) == (State.QUEUED, State.HELD)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: controls.pause(s, phases_of, "nope.toml", reason="r", actor="a"),
         "unknown workflow 'nope.toml'"),
        (lambda s: controls.pause(s, phases_of, "f1.toml", "nope", reason="r", actor="a"),
         "workflow 'f1.toml' has no phase 'nope' (its phases: extract, load)"),
        (lambda s: controls.pause(s, phases_of, "f1.toml", reason="  ", actor="a"),
         "pausing f1.toml needs a reason"),
        (lambda s: controls.pause(s, phases_of, "f1.toml", reason="a\nb", actor="a"),
         "the reason to pause f1.toml must be one line of printable text"),
        (lambda s: controls.resume(s, phases_of, "f1.toml", actor="a"), "f1.toml is not paused"),
        (lambda s: controls.resume(s, phases_of, "nope.toml", actor="a"), "unknown workflow"),
    ],
)  # fmt: skip
def test_bad_pauses_and_resumes_write_nothing(store: TaskStore, call, message: str) -> None:
    with pytest.raises(ControlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(store)
    assert store.controls() == [] and store.control_events() == []


def test_a_second_pause_is_refused_and_keeps_the_first_reason(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f1.toml", reason="first", actor="a")
    with pytest.raises(ControlError, match=r"already paused \(by a at .*: first\)"):
        controls.pause(store, phases_of, "f1.toml", reason="second", actor="b")
    [control] = store.controls()
    assert (control.reason, len(store.control_events())) == ("first", 1)


def test_a_paused_workflow_whose_file_is_gone_can_be_resumed(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f2.toml", reason="r", actor="a")
    rec = held(store, "a", workflow="f2.toml")
    event = controls.resume(store, lambda _: None, "f2.toml", actor="a")
    assert event.released == 1 and store.get(rec).state is State.QUEUED


def test_pause_every_pauses_what_is_not_paused(store: TaskStore) -> None:
    controls.pause(store, phases_of, "f1.toml", reason="mine", actor="a")
    made = controls.pause_every(store, ["f1.toml", "f2.toml"], reason="start", actor="f")
    assert [e.workflow for e in made] == ["f2.toml"]
    assert {(c.workflow, c.reason) for c in store.controls()} == {
        ("f1.toml", "mine"), ("f2.toml", "start"),
    }  # fmt: skip


def test_see_new_pauses_only_files_never_seen_and_never_switched(store: TaskStore) -> None:
    store.acquire("tm", ttl=60)
    assert controls.see_new(store, ["f1.toml"], pause=False, actor="f", leader="tm") == []
    controls.pause(store, phases_of, "f2.toml", reason="by hand", actor="a")
    controls.resume(store, phases_of, "f2.toml", actor="a")
    made = controls.see_new(store, ["f1.toml", "f2.toml", "f3.toml", "f3.toml"], pause=True,
                            actor="f", leader="tm")  # fmt: skip
    # f1 ran before the setting was on; f2 was switched by a person; f3 is new
    assert [(e.workflow, e.reason) for e in made] == [("f3.toml", "paused at creation")]
    controls.resume(store, lambda _: [], "f3.toml", actor="a")
    assert controls.see_new(store, ["f3.toml"], pause=True, actor="f", leader="tm") == []
    assert store.paused().holds("f3.toml", "x") is None  # resumed stays resumed


def test_sqlite_sees_a_pause_committed_by_another_connection(tmp_path: Path) -> None:
    clock = Clock()
    ours = SQLiteTaskStore(tmp_path / "db", now=clock)
    theirs = SQLiteTaskStore(tmp_path / "db", now=clock)
    try:
        assert ours.paused().holds("f1.toml", "x") is None  # read and cached
        assert ours.paused() is ours.paused()  # nothing changed: the cached snapshot
        controls.pause(theirs, phases_of, "f1.toml", reason="r", actor="a")
        assert ours.paused().holds("f1.toml", "x") is not None
        controls.resume(theirs, phases_of, "f1.toml", actor="a")
        assert ours.paused().holds("f1.toml", "x") is None
    finally:
        ours.close()
        theirs.close()


def test_sqlite_paused_raises_when_the_table_cannot_be_read(tmp_path: Path) -> None:
    store = SQLiteTaskStore(tmp_path / "db", now=Clock())
    try:
        controls.pause(store, phases_of, "f1.toml", reason="r", actor="a")
        apsw.Connection(str(tmp_path / "db")).execute("DROP TABLE workflow_controls")
        with pytest.raises(Exception, match="workflow_controls"):
            store.paused()
    finally:
        store.close()


def test_an_empty_paused_holds_nothing() -> None:
    assert Paused().holds("w", "p") is None and not Paused()
