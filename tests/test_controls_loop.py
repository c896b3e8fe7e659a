"""A paused workflow in the taskmaster's loop, on an injected clock and a real database: cron
fires, children, files tasks and due retries are held, not sent; a pause or resume committed
by another connection is seen at the next turn; the controls failing to read fail open."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import apsw
import pytest

from cache import SQLiteCache
from flowlord import controls, operations
from flowlord.bus import FileBus
from flowlord.loop import LoopSettings
from flowlord.state import SQLiteTaskStore, TaskFilter
from flowlord.taskmaster import Taskmaster
from tests.conftest import write
from tests.test_task_state_loop import Loop as StateLoop
from tests.test_taskmaster import Clock
from workflow import Result
from workflow.schedule import CronTable
from workflow.state import State

WORKFLOW = """
[[Phase]]
task = "parent"
rule = "cron=0 * * * *"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"

[[Phase]]
task = "child"
dependsOn = "parent"
retry = 2
rule = "retry_delay=1m"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"

[[Phase]]
task = "landed"
rule = "files=in/*.csv"
template = "?file={meta:file}"
"""
OTHER = """
[[Phase]]
task = "other"
rule = "cron=0 * * * *"
"""
START = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)


def hour(n: int, minute: int = 0) -> datetime:
    return START.replace(hour=n, minute=minute)


@dataclass
class Loop(StateLoop):
    """The task-state loop's helpers, with its home and cache for pausing by name."""

    home: Path
    cache: SQLiteCache

    def held(self) -> list[str]:
        found = self.store.tasks(TaskFilter(state=State.HELD))
        return [f"{r.type} {r.info}" for r in reversed(found)]

    def other_connection(self) -> SQLiteTaskStore:
        return SQLiteTaskStore(self.home / "db", now=self.clock)

    def pause(self, phase: str = "", workflow: str = "w.toml") -> None:
        """Paused by another connection, as the CLI or the API would."""
        other = self.other_connection()
        controls.pause(other, self.cache_phases, workflow, phase, reason="deploy", actor="ann")
        other.close()

    def resume(self, phase: str = "", *, discard: bool = False) -> int:
        other = self.other_connection()
        event = controls.resume(other, self.cache_phases, "w.toml", phase, actor="ann",
                                discard_held=discard)  # fmt: skip
        other.close()
        return event.discarded if discard else event.released

    def cache_phases(self, workflow: str) -> list[str] | None:
        return [p.task for p in self.cache.phases(workflow)] or None


def make_loop(home: Path, **settings: bool) -> Loop:
    clock = Clock(START)
    cache = SQLiteCache(home / "wf", home / "db", now=clock)
    cache.refresh()
    store = SQLiteTaskStore(home / "db", now=clock)
    bus = FileBus(home / "bus")
    ids = (f"id-{n}" for n in range(1000))
    taskmaster = Taskmaster(
        cache, store, bus.producer(), lambda: bus.consumer(["done", "files"], "taskmaster"),
        table=CronTable(UTC), now=clock, new_id=lambda: next(ids), holder="test",
        settings=LoopSettings(**settings),
    )  # fmt: skip
    return Loop(taskmaster, store, bus, bus.producer(), clock, home, cache)


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    made = make_loop(tmp_path)
    assert made.taskmaster.lead()
    yield made
    made.cache.close()
    made.store.close()


def test_a_paused_workflow_holds_its_cron_fires_and_resume_sends_them_in_order(
    loop: Loop,
) -> None:
    loop.pause()
    for n in (1, 2, 3):
        loop.settle(hour(n))
    assert loop.topic("parent") == []
    assert loop.held() == [f"parent ?hour=2026-11-21T0{n}" for n in (1, 2, 3)]
    [record] = loop.store.tasks(TaskFilter(state=State.HELD, limit=1))
    assert loop.store.transitions(record.rec)[0].reason.endswith(
        "held: w.toml paused by ann: deploy"
    )
    assert loop.taskmaster.counters.held == 3
    assert loop.resume() == 3
    loop.settle(hour(3, 1))
    assert [t["info"] for t in loop.topic("parent")] == [
        f"?hour=2026-11-21T0{n}" for n in (1, 2, 3)
    ]  # creation order
    loop.settle(hour(4))  # running again: the next fire is sent at once
    assert len(loop.topic("parent")) == 4 and loop.held() == []


def test_a_task_sent_before_the_pause_ends_and_its_children_are_held(loop: Loop) -> None:
    loop.settle(hour(1))
    [parent] = loop.topic("parent")
    loop.pause()
    loop.done(parent, Result.COMPLETE)
    loop.settle(hour(1, 5))
    [record] = loop.store.tasks(TaskFilter(type="parent"))
    assert record.state is State.COMPLETE
    assert loop.topic("child") == [] and loop.held() == ["child ?hour=2026-11-21T01"]
    loop.resume()
    loop.settle(hour(1, 6))
    assert [t["info"] for t in loop.topic("child")] == ["?hour=2026-11-21T01"]


def test_a_paused_phase_holds_only_that_phase(loop: Loop) -> None:
    loop.settle(hour(1))
    loop.pause("child")
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(hour(2))
    assert len(loop.topic("parent")) == 2  # the workflow's other phases run
    assert loop.held() == ["child ?hour=2026-11-21T01"]


def test_a_retry_that_comes_due_while_paused_is_held_not_sent(loop: Loop) -> None:
    loop.settle(hour(1))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(hour(1, 1))
    [child] = loop.topic("child")
    loop.done(child, Result.ERROR)
    loop.settle(hour(1, 2))  # the retry waits its minute
    assert loop.store.tasks(TaskFilter(state=State.WAITING))
    loop.pause()
    loop.settle(hour(1, 10))
    assert len(loop.topic("child")) == 1 and loop.held() == ["child ?hour=2026-11-21T01"]
    [retry] = loop.store.tasks(TaskFilter(state=State.HELD))
    assert [t.to_state for t in loop.store.transitions(retry.rec)] == [State.WAITING, State.HELD]
    loop.resume()
    loop.settle(hour(1, 11))
    assert loop.topic("child")[1]["meta"].endswith("retry=1")


def test_files_tasks_and_manual_retries_are_held_too(loop: Loop) -> None:
    loop.settle(hour(1))
    loop.done(loop.topic("parent")[0], Result.COMPLETE)
    loop.settle(hour(1, 1))
    loop.done(loop.topic("child")[0], Result.COMPLETE)
    loop.settle(hour(1, 2))
    loop.pause()
    loop.producer.send("files", json.dumps({"path": "in/a.csv", "size": 3}))
    [parent] = loop.store.tasks(TaskFilter(type="parent"))
    operations.retry(loop.store, parent.rec, actor="cli:ann")  # queued by a person
    loop.settle(hour(1, 3))
    assert loop.topic("landed") == [] and len(loop.topic("parent")) == 1
    assert sorted(loop.held()) == ["landed ?file=in/a.csv", "parent ?hour=2026-11-21T01"]


def test_discard_held_cancels_instead(loop: Loop) -> None:
    loop.pause()
    loop.settle(hour(1))
    assert loop.resume(discard=True) == 1
    loop.settle(hour(1, 1))
    assert loop.topic("parent") == []
    [record] = loop.store.tasks(TaskFilter(type="parent"))
    assert record.state is State.CANCELLED


def test_controls_that_cannot_be_read_fail_open(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    loop.pause()
    loop.settle(hour(1))
    assert loop.topic("parent") == []
    apsw.Connection(str(loop.home / "db")).execute("DROP TABLE workflow_controls")
    with caplog.at_level(logging.ERROR, "flowlord.taskmaster"):
        loop.settle(hour(2))  # the fire reads the controls, and the outbox before sending
        assert loop.taskmaster.counters.control_errors >= 2
        loop.settle(hour(3))
    assert [t["info"] for t in loop.topic("parent")] == [
        "?hour=2026-11-21T02", "?hour=2026-11-21T03",
    ]  # fmt: skip
    failures = [
        r.message for r in caplog.records if "cannot read the workflow controls" in r.message
    ]
    assert len(failures) == 2  # logged at most once a minute (an hour apart here)
    assert "every workflow runs (fail open; 1 failure(s) so far)" in failures[0]


def test_start_paused_pauses_every_file_before_anything_fires(tmp_path: Path) -> None:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    write(tmp_path / "wf", "o.toml", OTHER)
    first = make_loop(tmp_path)
    first.taskmaster.lead()
    first.settle(hour(1))  # both fire once: each has a mark now
    first.cache.close()
    first.store.close()
    loop = make_loop(tmp_path, start_paused=True)
    loop.clock.now = hour(3, 5)  # two fires missed of each: caught up, held
    assert loop.taskmaster.lead()
    loop.settle(hour(3, 6))
    assert {(c.workflow, c.enabled, c.reason) for c in loop.store.controls()} == {
        ("o.toml", False, "started paused"), ("w.toml", False, "started paused"),
    }  # fmt: skip
    assert len(loop.topic("parent")) == 1 and len(loop.topic("other")) == 1
    assert sorted(loop.held()) == ["other ", "parent ?hour=2026-11-21T03"]
    loop.cache.close()
    loop.store.close()


def test_paused_at_creation_pauses_new_files_only(tmp_path: Path) -> None:
    write(tmp_path / "wf", "w.toml", WORKFLOW)
    loop = make_loop(tmp_path, paused_at_creation=True)
    assert loop.taskmaster.lead()
    assert loop.resume() == 0  # a person lets w.toml run
    write(tmp_path / "wf", "o.toml", OTHER)
    changed = loop.cache.refresh()
    loop.taskmaster.on_change(sorted(changed))
    loop.settle(hour(1))
    loop.settle(hour(2))
    assert len(loop.topic("parent")) == 2 and loop.topic("other") == []
    assert loop.held() == ["other "]
    [new] = [c for c in loop.store.controls() if c.workflow == "o.toml"]
    assert (new.enabled, new.reason, new.updated_by) == (False, "paused at creation", "flowlord")
    loop.cache.close()
    loop.store.close()
