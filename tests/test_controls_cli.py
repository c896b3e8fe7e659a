"""`flowlord pause | resume | controls` called as functions of argv on a real database that
`flowlord phases` loaded: what they print (text and JSON), what they refuse (exit 2, one line,
nothing written), and what a resume does to held records (released in creation order, or
discarded; a record still held by another pause stays held), audited in `control_events`."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlord.cli import main
from flowlord.state import SQLiteTaskStore, TaskFilter, TaskRecord
from tests.conftest import write
from tests.records import add_record, phase_task
from workflow.controls import Control, ControlEvent
from workflow.state import State

pytestmark = pytest.mark.usefixtures("cli_home")

A = """
[[Phase]]
task = "tick"
rule = "cron=0 0 1 1 *"

[[Phase]]
task = "next"
dependsOn = "tick"

[[Phase]]
task = "load:db"
dependsOn = "tick"
"""
B = """
[[Phase]]
task = "other"
rule = "cron=0 0 1 1 *"
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), f"{argv}: {err}"
    return out


def load(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """What `flowlord run` would load: the database then knows the files and their phases."""
    ok(capsys, "phases", "--workflows", "wf", "--db", str(db))


@pytest.fixture
def db(cli_home: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """a.toml (tick, next, load:db), b.toml (other) and sub/c.toml (other), loaded."""
    write(cli_home / "wf", "a.toml", A)
    write(cli_home / "wf", "b.toml", B)
    write(cli_home / "wf", "sub/c.toml", B)
    path = cli_home / "state.db"
    load(capsys, path)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteTaskStore]:
    opened = SQLiteTaskStore(db, now=lambda: datetime.now(UTC))
    yield opened
    opened.close()


def hold(store: SQLiteTaskStore, *where: tuple[str, str]) -> list[TaskRecord]:
    """One held record per (workflow, phase), each in its own transaction (distinct times)."""
    made = []
    for n, (workflow, phase) in enumerate(where):
        # Ids run backwards, so that an order by id is not mistaken for the creation order.
        task = phase_task(workflow, phase, f"run-{99 - n:02d}")
        made.append(add_record(store, task, workflow=workflow, phase=phase, state=State.HELD))
    return made


@dataclass(frozen=True)
class Snapshot:
    controls: list[Control]
    events: list[ControlEvent]
    records: list[TaskRecord]


def snapshot(db: Path) -> Snapshot:
    """Everything a control command could write, read on a connection of its own."""
    store = SQLiteTaskStore(db, now=lambda: datetime.now(UTC))
    try:
        return Snapshot(
            store.controls(),
            store.control_events(limit=100_000),
            store.tasks(TaskFilter(limit=100_000)),
        )
    finally:
        store.close()


def states(db: Path) -> dict[int, State]:
    return {r.rec: r.state for r in snapshot(db).records}


# -- pause, resume, controls: text and JSON ---------------------------------------------------


def test_controls_before_any_pause(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    assert ok(capsys, "controls", "--db", str(db)) == "no workflow has been paused\n"
    assert json.loads(ok(capsys, "controls", "--db", str(db), "--json")) == {
        "controls": [], "events": [],
    }  # fmt: skip


def test_pause_and_resume_as_text(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    out = ok(capsys, "pause", "a.toml", "--reason", "db migration", "--by", "ana", "--db", str(db))
    assert out == "paused a.toml: db migration\n"
    out = ok(capsys, "pause", "b.toml", "other", "--reason", "flaky", "--by", "bo", "--db", str(db))
    assert out == "paused b.toml: other: flaky\n"
    table, _, events = ok(capsys, "controls", "--db", str(db)).partition("\n\n")
    header, *rows = [line.split(maxsplit=6) for line in table.splitlines()]
    assert header == ["workflow", "phase", "state", "held", "since", "by", "reason"]
    assert [(r[0], r[1], r[2], r[3], r[5], r[6]) for r in rows] == [
        ("a.toml", "(all)", "PAUSED", "0", "cli:ana", "db migration"),
        ("b.toml", "other", "PAUSED", "0", "cli:bo", "flaky"),
    ]  # fmt: skip
    datetime.fromisoformat(rows[0][4])
    assert [line.split()[2:5] for line in events.splitlines()[1:]] == [
        ["b.toml:", "other", "paused"], ["a.toml", "paused", "cli:ana"],
    ]  # fmt: skip

    out = ok(capsys, "resume", "a.toml", "--by", "ana", "--db", str(db))
    assert out == "resumed a.toml: 0 held task(s) released\n"
    table, _, events = ok(capsys, "controls", "--db", str(db)).partition("\n\n")
    rows = [line.split(maxsplit=6) for line in table.splitlines()[1:]]
    # Paused first: b.toml's pause, then a.toml, running again.
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("b.toml", "other", "PAUSED"), ("a.toml", "(all)", "running"),
    ]  # fmt: skip
    assert "resumed (0 released, 0 discarded)" in events.splitlines()[1]


def test_pause_resume_and_controls_as_json(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    paused = json.loads(ok(capsys, "pause", "a.toml", "next", "--reason", "slow", "--by", "bo",
                           "--db", str(db), "--json"))  # fmt: skip
    assert {k: v for k, v in paused.items() if k not in ("seq", "at")} == {
        "workflow": "a.toml", "phase": "next", "actor": "cli:bo", "from_enabled": None,
        "to_enabled": False, "reason": "slow", "released": 0, "discarded": 0,
    }  # fmt: skip
    assert paused["at"].endswith("Z")
    datetime.fromisoformat(paused["at"])
    resumed = json.loads(ok(capsys, "resume", "a.toml", "next", "--db", str(db), "--json"))
    assert (resumed["from_enabled"], resumed["to_enabled"]) == (False, True)
    assert resumed["actor"] == f"cli:{getpass.getuser()}"  # the default actor: the user
    assert resumed["seq"] > paused["seq"]
    shown = json.loads(ok(capsys, "controls", "--db", str(db), "--json"))
    [control] = shown["controls"]
    assert {k: v for k, v in control.items() if k != "updated_at"} == {
        "workflow": "a.toml", "phase": "next", "enabled": True, "reason": "",
        "updated_by": f"cli:{getpass.getuser()}", "held": 0,
    }  # fmt: skip
    assert control["updated_at"] == resumed["at"]
    assert [e["seq"] for e in shown["events"]] == [resumed["seq"], paused["seq"]]  # newest first


def test_controls_count_the_records_each_pause_holds(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    hold(store, ("a.toml", "tick"), ("a.toml", "next"), ("a.toml", "next"), ("b.toml", "other"))
    ok(capsys, "pause", "a.toml", "--reason", "r", "--db", str(db))
    ok(capsys, "pause", "a.toml", "next", "--reason", "r", "--db", str(db))
    ok(capsys, "pause", "b.toml", "--reason", "r", "--db", str(db))
    ok(capsys, "pause", "sub/c.toml", "--reason", "r", "--db", str(db))
    shown = json.loads(ok(capsys, "controls", "--db", str(db), "--json"))
    assert {(c["workflow"], c["phase"]): c["held"] for c in shown["controls"]} == {
        ("a.toml", ""): 3, ("a.toml", "next"): 2, ("b.toml", ""): 1, ("sub/c.toml", ""): 0,
    }  # fmt: skip


def test_the_commands_read_the_same_settings_as_run(
    capsys: pytest.CaptureFixture[str], cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --db: flowlord.toml's db, and FLOWLORD_DB over it."""
    write(cli_home / "wf", "a.toml", A)
    (cli_home / "flowlord.toml").write_text('workflows = "wf"\ndb = "from-file.db"\n')
    ok(capsys, "phases")
    ok(capsys, "pause", "a.toml", "--reason", "in the file's db")
    assert [c.workflow for c in snapshot(cli_home / "from-file.db").controls] == ["a.toml"]
    assert json.loads(ok(capsys, "controls", "--json"))["controls"][0]["reason"] == \
        "in the file's db"  # fmt: skip
    monkeypatch.setenv("FLOWLORD_DB", str(cli_home / "from-env.db"))
    ok(capsys, "phases")
    assert json.loads(ok(capsys, "controls", "--json"))["controls"] == []
    ok(capsys, "pause", "a.toml", "--reason", "in the env's db")
    assert [c.reason for c in snapshot(cli_home / "from-env.db").controls] == ["in the env's db"]
    assert [c.reason for c in snapshot(cli_home / "from-file.db").controls] == ["in the file's db"]


# -- bad input: exit 2, one line, nothing written ---------------------------------------------

REFUSED = [
    (["pause", "nope.toml", "--reason", "r"], "unknown workflow 'nope.toml'"),
    (["pause", "A.toml", "--reason", "r"], "unknown workflow 'A.toml'"),
    (["pause", "c.toml", "--reason", "r"], "unknown workflow 'c.toml'"),  # the key is sub/c.toml
    (["pause", "a.toml", "other", "--reason", "r"],
     "workflow 'a.toml' has no phase 'other' (its phases: tick, next, load:db)"),
    (["pause", "a.toml", "load", "--reason", "r"], "workflow 'a.toml' has no phase 'load'"),
    (["pause", "a.toml", "next", "--reason", "again"], "a.toml: next is already paused (by "
                                                       "cli:ana at "),
    (["pause", "b.toml", "--reason", "again"], "b.toml is already paused (by cli:ana at "),
    (["pause", "a.toml", "--reason", ""], "pausing a.toml needs a reason"),
    (["pause", "a.toml", "tick", "--reason", " \t "], "pausing a.toml: tick needs a reason"),
    (["pause", "a.toml"], "the following arguments are required: --reason"),
    (["pause", "--reason", "r"], "the following arguments are required: WORKFLOW"),
    (["resume", "a.toml"], "a.toml is not paused"),
    (["resume", "a.toml", "tick"], "a.toml: tick is not paused"),
    (["resume", "nope.toml"], "unknown workflow 'nope.toml'"),
    (["resume", "a.toml", "nope"], "workflow 'a.toml' has no phase 'nope'"),
    (["resume", "b.toml", "other"], "b.toml: other is not paused"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), REFUSED, ids=[" ".join(a) for a, _ in REFUSED])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    store: SQLiteTaskStore,
    argv: list[str],
    message: str,
) -> None:
    hold(store, ("a.toml", "next"), ("b.toml", "other"))
    ok(capsys, "pause", "a.toml", "next", "--reason", "first", "--by", "ana", "--db", str(db))
    ok(capsys, "pause", "b.toml", "--reason", "first", "--by", "ana", "--db", str(db))
    before = snapshot(db)
    code, out, err = run(capsys, *argv, "--db", str(db))
    assert code == 2
    assert out == ""
    assert err.startswith("flowlord: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert message in err
    assert snapshot(db) == before


def test_a_gone_workflow_can_be_resumed_but_not_paused(
    capsys: pytest.CaptureFixture[str], cli_home: Path, db: Path, store: SQLiteTaskStore
) -> None:
    """Its held records must not be stranded once its file is deleted."""
    ok(capsys, "pause", "b.toml", "--reason", "going away", "--db", str(db))
    [record] = hold(store, ("b.toml", "other"))
    (cli_home / "wf" / "b.toml").unlink()
    load(capsys, db)
    code, _, err = run(capsys, "pause", "b.toml", "other", "--reason", "r", "--db", str(db))
    assert (code, err) == (
        2,
        "flowlord: unknown workflow 'b.toml': no workflow file has this key\n",
    )
    out = ok(capsys, "resume", "b.toml", "--db", str(db))
    assert out == "resumed b.toml: 1 held task(s) released\n"
    assert states(db)[record.rec] is State.QUEUED


# -- held records on resume --------------------------------------------------------------------


def test_a_resumed_phase_releases_nothing_while_its_workflow_is_paused(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    tick, next1, next2, load_db = hold(
        store, ("a.toml", "tick"), ("a.toml", "next"), ("a.toml", "next"), ("a.toml", "load:db")
    )
    ok(capsys, "pause", "a.toml", "--reason", "whole file", "--db", str(db))
    ok(capsys, "pause", "a.toml", "next", "--reason", "one phase", "--db", str(db))
    ok(capsys, "pause", "a.toml", "load:db", "--reason", "another phase", "--db", str(db))

    out = ok(capsys, "resume", "a.toml", "next", "--by", "ana", "--db", str(db))
    assert out == "resumed a.toml: next: 0 held task(s) released\n"
    assert set(states(db).values()) == {State.HELD}
    # The workflow resumed: its records go, but load:db's stay, held by its phase's pause.
    out = ok(capsys, "resume", "a.toml", "--by", "ana", "--db", str(db))
    assert out == "resumed a.toml: 3 held task(s) released\n"
    assert states(db) == {tick.rec: State.QUEUED, next1.rec: State.QUEUED,
                          next2.rec: State.QUEUED, load_db.rec: State.HELD}  # fmt: skip
    out = ok(capsys, "resume", "a.toml", "load:db", "--by", "ana", "--db", str(db))
    assert out == "resumed a.toml: load:db: 1 held task(s) released\n"
    assert set(states(db).values()) == {State.QUEUED}
    released = store.transitions(next1.rec)[-1]
    assert (released.from_state, released.to_state, released.actor) == (
        State.HELD, State.QUEUED, "cli:ana",
    )  # fmt: skip
    assert released.reason == "released: a.toml resumed by cli:ana"
    events = store.control_events(workflow="a.toml")
    assert [(e.phase, e.to_enabled, e.released, e.discarded, e.actor) for e in events[:3]] == [
        ("load:db", True, 1, 0, "cli:ana"), ("", True, 3, 0, "cli:ana"),
        ("next", True, 0, 0, "cli:ana"),
    ]  # fmt: skip


def test_a_resumed_workflow_keeps_a_paused_phase_held_until_it_is_resumed(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    tick, nxt = hold(store, ("a.toml", "tick"), ("a.toml", "next"))
    ok(capsys, "pause", "a.toml", "next", "--reason", "one phase", "--db", str(db))
    ok(capsys, "pause", "a.toml", "--reason", "whole file", "--db", str(db))
    ok(capsys, "resume", "a.toml", "--db", str(db))
    assert states(db) == {tick.rec: State.QUEUED, nxt.rec: State.HELD}
    out = ok(capsys, "resume", "a.toml", "next", "--db", str(db))
    assert out == "resumed a.toml: next: 1 held task(s) released\n"
    assert states(db) == {tick.rec: State.QUEUED, nxt.rec: State.QUEUED}


def test_discard_held_cancels_the_held_records_and_only_those(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    first, second = hold(store, ("a.toml", "tick"), ("a.toml", "next"))
    [other] = hold(store, ("b.toml", "other"))
    ok(capsys, "pause", "a.toml", "--reason", "bad data", "--db", str(db))
    ok(capsys, "pause", "b.toml", "--reason", "bad data", "--db", str(db))
    event = json.loads(ok(capsys, "resume", "a.toml", "--discard-held", "--by", "ana",
                          "--db", str(db), "--json"))  # fmt: skip
    assert (event["released"], event["discarded"], event["actor"]) == (0, 2, "cli:ana")
    assert states(db) == {first.rec: State.CANCELLED, second.rec: State.CANCELLED,
                          other.rec: State.HELD}  # fmt: skip
    cancelled = store.get(first.rec)
    assert cancelled.ended is not None
    last = store.transitions(first.rec)[-1]
    assert (last.to_state, last.actor, last.reason) == (
        State.CANCELLED, "cli:ana", "discarded: a.toml resumed by cli:ana",
    )  # fmt: skip
    out = ok(capsys, "resume", "b.toml", "--discard-held", "--db", str(db))
    assert out == "resumed b.toml: 1 held task(s) discarded\n"
    assert states(db)[other.rec] is State.CANCELLED


def test_held_records_are_released_in_creation_order(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    """Phases interleaved and ids running backwards: what the outbox sends next (`due`) is
    the held records oldest first, and the audit moved them in that order."""
    made = hold(store, *[("a.toml", phase) for phase in ("next", "tick", "load:db") * 3])
    ok(capsys, "pause", "a.toml", "--reason", "r", "--db", str(db))
    ok(capsys, "resume", "a.toml", "--db", str(db))
    recs = [r.rec for r in made]
    assert recs == sorted(recs)
    assert [r.rec for r in store.due()] == recs
    assert [r.id for r in store.due()] == [f"run-{99 - n:02d}" for n in range(9)]
    released_at = [store.transitions(rec)[-1].at for rec in recs]
    assert released_at == sorted(released_at)
    assert released_at[0] > made[-1].created  # released after the last was made


def test_every_change_is_audited_with_its_counts(
    capsys: pytest.CaptureFixture[str], db: Path, store: SQLiteTaskStore
) -> None:
    hold(store, ("a.toml", "tick"), ("a.toml", "next"))
    ok(capsys, "pause", "a.toml", "--reason", "one", "--by", "ana", "--db", str(db))
    ok(capsys, "resume", "a.toml", "--by", "bo", "--db", str(db))
    hold(store, ("a.toml", "tick"))
    ok(capsys, "pause", "a.toml", "--reason", "two", "--by", "ana", "--db", str(db))
    ok(capsys, "resume", "a.toml", "--discard-held", "--by", "cy", "--db", str(db))
    events = list(reversed(snapshot(db).events))
    assert [(e.workflow, e.phase, e.actor, e.from_enabled, e.to_enabled, e.reason, e.released,
             e.discarded) for e in events] == [
        ("a.toml", "", "cli:ana", None, False, "one", 0, 0),
        ("a.toml", "", "cli:bo", False, True, "", 2, 0),
        ("a.toml", "", "cli:ana", True, False, "two", 0, 0),
        ("a.toml", "", "cli:cy", False, True, "", 0, 1),
    ]  # fmt: skip
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
