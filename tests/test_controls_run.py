"""Workflow controls beside real `flowlord run` processes (DESIGN §5): a pause takes effect
within a second and holds what would be sent; a resume sends the held tasks oldest first; a
task sent before the pause runs to its end; held records survive kill -9; `--start-paused`
and `paused_at_creation`; and fail open when the controls table cannot be read.

A per-second cron phase is the clock: waiting for records to be held (or sent) is waiting for
the loop to have fired, so "nothing was sent" is checked after fires the loop did hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import apsw
import pytest

from flowlord.bus import FileBus
from flowlord.state import SQLiteTaskStore, TaskFilter, TaskRecord
from tests.conftest import write
from tests.processes import ROOT, flowlord_run, stop, tasks_on, text, wait_until
from workflow.state import State

pytestmark = pytest.mark.slow

TICK = """
[[Phase]]
task = "tick"
rule = "cron=* * * * * *&retry_delay=2s"
retry = 1

[[Phase]]
task = "after"
dependsOn = "tick"
"""
FRESH = """
[[Phase]]
task = "fresh"
rule = "cron=* * * * * *"
"""
FILES = """
[[Phase]]
task = "ingest:clicks"
rule = "files=s3://landing/clicks/*/*.json.gz"
template = "{meta:file}"

[[Phase]]
task = "audit"
rule = "files=s3://landing/clicks/*/*.json.gz"
template = "{meta:file}"
"""
ALL = 100_000


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write(tmp_path / "wf", "tick.toml", TICK)
    (tmp_path / "bus").mkdir()
    return tmp_path


@pytest.fixture
def store(home: Path) -> Iterator[SQLiteTaskStore]:
    """The run's database, read on a connection of the test's own."""
    opened = SQLiteTaskStore(home / "flowlord.db", now=lambda: datetime.now(UTC))
    yield opened
    opened.close()


def flowlord(home: Path, *argv: str) -> Any:
    """A control command as a process of its own, beside the run; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "flowlord", *argv, "--json"], cwd=home, capture_output=True,
        text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, f"flowlord {' '.join(argv)}: {done.stderr}"
    return json.loads(done.stdout)


def sent(home: Path, topic: str = "tick") -> list[str]:
    """The metas of the tasks on a topic, in bus order (a cron task's meta names its instant)."""
    return [task["meta"] for task in tasks_on(home / "bus", topic)]


def instant(meta: str) -> datetime:
    return datetime.fromisoformat(dict(parse_qsl(meta))["cron"])


def records(store: SQLiteTaskStore, type_: str = "tick", state: State | None = None
            ) -> list[TaskRecord]:  # fmt: skip
    """Oldest first."""
    found = store.tasks(TaskFilter(type=type_, state=state, limit=ALL))
    return sorted(found, key=lambda r: r.rec)


def held_reasons(store: SQLiteTaskStore, record: TaskRecord) -> list[str]:
    return [t.reason for t in store.transitions(record.rec) if t.to_state is State.HELD]


def released(store: SQLiteTaskStore, type_: str = "tick") -> list[TaskRecord]:
    """The records a resume moved from held to queued, oldest first."""
    return [
        r for r in records(store, type_)
        if any(t.from_state is State.HELD and t.to_state is State.QUEUED
               for t in store.transitions(r.rec))
    ]  # fmt: skip


def control(home: Path, workflow: str) -> dict[str, Any]:
    """The switch of a whole workflow file, as `flowlord controls --json` shows it."""
    [found] = [c for c in flowlord(home, "controls")["controls"]
               if c["workflow"] == workflow and c["phase"] == ""]  # fmt: skip
    return found


def append_done(home: Path, task: dict[str, str], result: str = "complete") -> None:
    with open(FileBus(home / "bus").topic_path("done"), "a") as file:
        file.write(json.dumps({**task, "result": result}) + "\n")


def test_a_pause_holds_within_a_second_and_a_resume_sends_the_held_tasks_in_order(
    home: Path, store: SQLiteTaskStore
) -> None:
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: len(sent(home)) >= 2, "two ticks sent", run)
        event = flowlord(home, "pause", "tick.toml", "--reason", "maintenance", "--by", "ops")
        exited = time.monotonic()
        committed = datetime.fromisoformat(event["at"])
        last_seen = [len(sent(home)), exited]  # bus size, and when it last grew

        def three_held() -> bool:
            now_sent = len(sent(home))
            if now_sent > last_seen[0]:
                last_seen[:] = [now_sent, time.monotonic()]
            return len(records(store, state=State.HELD)) >= 3

        wait_until(three_held, "three ticks held", run)
        on_bus = sent(home)
        latest_send = max(r.sent for r in records(store) if r.sent is not None)
        first_held = min(r.created for r in records(store, state=State.HELD))
        print(f"\npause -> effect: committed {committed.time()}; last send "
              f"{(latest_send - committed).total_seconds():+.3f} s, first fire held "
              f"{(first_held - committed).total_seconds():+.3f} s from the commit; last new "
              f"task seen on the bus {last_seen[1] - exited:.3f} s after the command "
              "exited")  # fmt: skip
        # Untimed: every transaction that makes a record reads the committed pause, so each
        # record made after the commit is held and none is on the bus (how soon is measured
        # and printed above; the machine is too noisy for a timed assertion).
        after = [r for r in records(store) if r.created > committed]
        assert after and all(record.state is State.HELD for record in after), after
        assert not {instant(r.meta) for r in after} & {instant(meta) for meta in on_bus}
        held = records(store, state=State.HELD)
        for record in held:
            assert any("held: tick.toml paused by cli:ops: maintenance" in why
                       for why in held_reasons(store, record)), record  # fmt: skip

        resumed = flowlord(home, "resume", "tick.toml", "--by", "ops")
        assert resumed["released"] >= len(held)
        wait_until(lambda: not records(store, state=State.HELD)
                   and all(r.state is State.SENT for r in released(store)),
                   "the held ticks sent", run)  # fmt: skip
        assert stop(run) == 0
    out = released(store)
    assert len(out) == resumed["released"]
    resume_effect = min(r.sent for r in out if r.sent) - datetime.fromisoformat(resumed["at"])
    print(f"resume -> effect: the first held task sent {resume_effect.total_seconds():.3f} s "
          "after the resume committed")  # fmt: skip
    assert {r.rec for r in held} <= {r.rec for r in out}
    on_bus = sent(home)
    assert len(on_bus) == len(set(on_bus))  # each once
    positions = [on_bus.index(r.meta) for r in out]
    assert positions == sorted(positions)  # sent oldest first...
    assert [instant(r.meta) for r in out] == sorted(instant(r.meta) for r in out)  # by instant
    before_pause = on_bus[: positions[0]]
    assert all(instant(meta) < instant(out[0].meta) for meta in before_pause)


def test_a_task_sent_before_the_pause_runs_to_its_end_and_what_follows_is_held(
    home: Path, store: SQLiteTaskStore
) -> None:
    """What follows a task sent before the pause is held: its child (born held), a manual
    retry queued by the CLI and an automatic retry that comes due (both held by the outbox)."""
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: len(sent(home)) >= 2, "two ticks sent", run)
        first, second = tasks_on(home / "bus", "tick")[:2]
        append_done(home, second, "error")  # its retry waits 2 s: it comes due while paused
        wait_until(lambda: records(store, state=State.WAITING), "a waiting retry", run)
        event = flowlord(home, "pause", "tick.toml", "--reason", "deploy", "--by", "ops")
        committed = datetime.fromisoformat(event["at"])
        append_done(home, first)
        wait_until(lambda: records(store, "after"), "the child recorded", run)
        [parent] = [r for r in records(store) if r.meta == first["meta"]]
        assert (parent.state, parent.result) == (State.COMPLETE, "complete")
        [child] = records(store, "after")
        assert (child.state, child.id) == (State.HELD, first["id"])
        [why] = held_reasons(store, child)
        assert why == f"child of record {parent.rec}; held: tick.toml paused by cli:ops: deploy"
        print(
            f"\npause -> effect: a child held {(child.created - committed).total_seconds():.3f}"
            " s after the pause committed (its done appended after the command exited)"
        )

        manual = flowlord(home, "retry", str(parent.rec), "--by", "ops")
        retries = [r.rec for r in records(store) if r.attempt == 1]  # automatic and manual
        assert manual["rec"] in retries and len(retries) == 2
        wait_until(lambda: all(store.get(rec).state is State.HELD for rec in retries),
                   "both retries held", run)  # fmt: skip
        for rec in retries:
            moves = [(t.from_state, t.to_state, t.actor) for t in store.transitions(rec)]
            assert moves[-1][1:] == (State.HELD, "flowlord"), moves  # the outbox held it
            assert held_reasons(store, store.get(rec)) == [
                "held: tick.toml paused by cli:ops: deploy"
            ]  # fmt: skip
        assert sent(home, "after") == []
        assert not [meta for meta in sent(home) if "retry=" in meta]

        flowlord(home, "resume", "tick.toml", "--by", "ops")
        wait_until(lambda: sent(home, "after") and all(store.get(rec).state is State.SENT
                                                       for rec in retries),
                   "the child and the retries sent", run)  # fmt: skip
        assert stop(run) == 0
    [after] = tasks_on(home / "bus", "after")
    assert after["id"] == first["id"]
    assert store.get(child.rec).state is State.SENT
    assert sorted(t["id"] for t in tasks_on(home / "bus", "tick") if "retry=1" in t["meta"]) == \
        sorted([first["id"], second["id"]])  # fmt: skip


def test_a_paused_phase_holds_its_files_tasks_and_only_those(
    home: Path, store: SQLiteTaskStore
) -> None:
    """One file message starts two phases of a file: the paused one is held, the other sent."""
    write(home / "wf", "files.toml", FILES)
    path = "s3://landing/clicks/20261120/part-1.json.gz"
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: "scheduled files.toml" in text(home, "run.log"), "files.toml", run)
        flowlord(home, "pause", "files.toml", "ingest:clicks", "--reason", "schema change")
        with open(FileBus(home / "bus").topic_path("files"), "a") as file:
            file.write(json.dumps({"path": path, "size": 10, "modified": "x"}) + "\n")
        wait_until(lambda: records(store, "ingest") and sent(home, "audit"), "the file", run)
        [ingest] = records(store, "ingest")
        assert (ingest.state, ingest.workflow, ingest.phase) == (
            State.HELD, "files.toml", "ingest:clicks",
        )  # fmt: skip
        assert held_reasons(store, ingest)[0].startswith("file {")
        assert "held: files.toml: ingest:clicks paused by cli:" in held_reasons(store, ingest)[0]
        assert sent(home, "ingest") == []
        assert flowlord(home, "controls")["controls"][0]["held"] == 1
        flowlord(home, "resume", "files.toml", "ingest:clicks")
        wait_until(lambda: sent(home, "ingest"), "the ingest task sent", run)
        assert stop(run) == 0
    [task] = tasks_on(home / "bus", "ingest")
    assert (task["job"], task["info"]) == ("clicks", path)
    assert len(sent(home, "audit")) == 1


def test_held_records_survive_kill_9_and_are_sent_once_on_resume(
    home: Path, store: SQLiteTaskStore
) -> None:
    with flowlord_run(home, "run1.log", "--lease", "1s") as run:  # the successor waits it out
        wait_until(lambda: len(sent(home)) >= 1, "a tick sent", run)
        flowlord(home, "pause", "tick.toml", "--reason", "incident", "--by", "ops")
        wait_until(lambda: len(records(store, state=State.HELD)) >= 2, "two held", run)
        run.kill()  # kill -9 while paused
        run.wait()
    held_before = records(store, state=State.HELD)
    bus_before = sent(home)
    with flowlord_run(home, "run2.log") as again:
        # Fires after the restart are held too: the loop has turned, and sent nothing.
        wait_until(lambda: len(records(store, state=State.HELD)) >= len(held_before) + 2,
                   "two more held after the restart", again)  # fmt: skip
        assert sent(home) == bus_before
        resumed = flowlord(home, "resume", "tick.toml", "--by", "ops")
        wait_until(lambda: not records(store, state=State.HELD)
                   and all(r.state is State.SENT for r in released(store)),
                   "the held ticks sent", again)  # fmt: skip
        assert stop(again) == 0
    assert resumed["released"] >= len(held_before) + 2
    on_bus = sent(home)
    assert len(on_bus) == len(set(on_bus)), "a tick sent twice"
    every = records(store)
    assert sorted(on_bus) == sorted(r.meta for r in every), "a tick lost, or sent unrecorded"
    assert {r.state for r in every} == {State.SENT}
    assert {r.rec for r in held_before} <= {r.rec for r in released(store)}


def test_start_paused_pauses_every_workflow_and_a_resume_outlives_a_restart(
    home: Path, store: SQLiteTaskStore
) -> None:
    write(home / "wf", "fresh.toml", FRESH)
    with flowlord_run(home, "run1.log", "--start-paused") as run:
        wait_until(lambda: len(records(store, state=State.HELD)) >= 2
                   and len(records(store, "fresh", State.HELD)) >= 2,
                   "ticks of both files held", run)  # fmt: skip
        assert (sent(home), sent(home, "fresh")) == ([], [])
        shown = flowlord(home, "controls")["controls"]
        assert [(c["workflow"], c["phase"], c["enabled"], c["reason"], c["updated_by"])
                for c in shown] == [
            ("fresh.toml", "", False, "started paused", "flowlord"),
            ("tick.toml", "", False, "started paused", "flowlord"),
        ]  # fmt: skip
        assert "started paused: paused 2 workflow file(s)" in text(home, "run1.log")
        flowlord(home, "resume", "tick.toml")
        wait_until(lambda: len(sent(home)) >= 3, "ticks sent once resumed", run)
        assert stop(run) == 0
    before = len(sent(home))
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: len(sent(home)) >= before + 2, "ticks sent after the restart", again)
        assert stop(again) == 0
    assert "started paused" not in text(home, "run2.log")
    assert control(home, "tick.toml")["enabled"] is True
    assert control(home, "fresh.toml")["enabled"] is False
    assert sent(home, "fresh") == []


def test_paused_at_creation_pauses_a_new_file_before_its_first_fire(
    home: Path, store: SQLiteTaskStore
) -> None:
    (home / "flowlord.toml").write_text("paused_at_creation = true\n")
    with flowlord_run(home, "run1.log") as run:
        # tick.toml is new to this database too: paused at creation, then resumed by hand.
        wait_until(lambda: records(store, state=State.HELD), "a tick held", run)
        assert control(home, "tick.toml")["reason"] == "paused at creation"
        flowlord(home, "resume", "tick.toml")
        wait_until(lambda: len(sent(home)) >= 1, "a tick sent once resumed", run)
        write(home, "fresh.tmp", FRESH).replace(home / "wf" / "fresh.toml")  # whole, at once
        wait_until(lambda: len(records(store, "fresh", State.HELD)) >= 2, "fresh held", run)
        assert sent(home, "fresh") == []
        assert {r.state for r in records(store, "fresh")} == {State.HELD}
        first_fire = store.transitions(records(store, "fresh")[0].rec)[0]
        assert (first_fire.from_state, first_fire.to_state) == (None, State.HELD)  # born held
        assert control(home, "fresh.toml")["reason"] == "paused at creation"
        assert "paused fresh.toml: a new workflow file (paused_at_creation)" in \
            text(home, "run1.log")  # fmt: skip
        assert stop(run) == 0
    before = len(sent(home))
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: len(sent(home)) >= before + 2, "ticks sent after the restart", again)
        wait_until(lambda: len(records(store, "fresh", State.HELD)) >= 3, "fresh held", again)
        assert stop(again) == 0
    assert control(home, "tick.toml")["enabled"] is True
    assert sent(home, "fresh") == []


def test_the_controls_fail_open_when_their_table_cannot_be_read(
    home: Path, store: SQLiteTaskStore
) -> None:
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: len(sent(home)) >= 1, "a tick sent", run)
        flowlord(home, "pause", "tick.toml", "--reason", "maintenance")
        wait_until(lambda: records(store, state=State.HELD), "a tick held", run)
        before = len(sent(home))
        connection = apsw.Connection(str(home / "flowlord.db"))
        connection.setbusytimeout(10_000)
        connection.execute("DROP TABLE workflow_controls")
        connection.close()
        wait_until(lambda: len(sent(home)) >= before + 2, "ticks sent again", run)
        assert "cannot read the workflow controls" in text(home, "run.log")
        assert run.poll() is None
        assert stop(run) == 0
    [counters] = re.findall(r"flowlord stopped: Counters\((.*)\)", text(home, "run.log"))
    assert int(dict(re.findall(r"(\w+)=(\d+)", counters))["control_errors"]) >= 1


def test_paused_at_creation_does_not_pause_a_workflow_that_ran_before_it_was_set(
    home: Path, store: SQLiteTaskStore
) -> None:
    """BUG (fails today): DESIGN §5 says `paused_at_creation` pauses each *new* workflow
    file; flowlord pauses every file it has no control for, so turning the setting on and
    restarting pauses workflows that have been running all along (an outage of every
    workflow nobody ever paused). See `Taskmaster._pause_at_start` / `controls.pause_every`."""
    with flowlord_run(home, "run1.log") as run:
        wait_until(lambda: len(sent(home)) >= 1, "tick.toml running", run)
        assert stop(run) == 0
    (home / "flowlord.toml").write_text("paused_at_creation = true\n")
    before = len(sent(home))
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: len(sent(home)) >= before + 2 or records(store, state=State.HELD),
                   "ticks sent, or held", again)  # fmt: skip
        assert stop(again) == 0
    paused = [c["workflow"] for c in flowlord(home, "controls")["controls"] if not c["enabled"]]
    assert paused == [], "BUG: a workflow that ran before was paused as if it were new"
    assert records(store, state=State.HELD) == []
