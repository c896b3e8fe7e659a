"""Durable task state with real `flowlord run` processes: kill -9 during a retry's delay,
duplicate and external done messages, cron catch-up after downtime, and the leader lease
(a standby takes over when the leader is killed, at once when it stops cleanly)."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlord.bus import FileBus
from flowlord.state import SQLiteTaskStore, TaskFilter
from tests.conftest import write
from tests.processes import flowlord_run, stop, text, wait_until
from tests.processes import tasks_on as bus_tasks
from workflow.state import Origin, State

CHAIN = """
[[Phase]]
task = "parent"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "child"
dependsOn = "parent"
rule = "retry_delay=3s"
retry = 1
template = "?day={yyyy}-{mm}-{dd}"
"""

pytestmark = pytest.mark.slow


def tasks_on(home: Path, topic: str) -> list[dict[str, str]]:
    return bus_tasks(home / "bus", topic)


def append_done(home: Path, task: dict[str, str]) -> None:
    path = FileBus(home / "bus").topic_path("done")
    with open(path, "a") as file:
        file.write(json.dumps({"meta": "workflow=chain.toml", **task}) + "\n")


def store_of(home: Path) -> SQLiteTaskStore:
    return SQLiteTaskStore(home / "flowlord.db", now=lambda: datetime.now(UTC))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write(tmp_path / "wf", "chain.toml", CHAIN)
    (tmp_path / "bus").mkdir()
    return tmp_path


def test_a_retry_survives_kill_9_during_its_delay_and_is_sent_once(home: Path) -> None:
    append_done(home, {"type": "parent", "info": "?day=2026-11-20", "id": "r1",
                       "result": "complete"})  # fmt: skip
    with flowlord_run(home, "run1.log") as run:
        wait_until(lambda: len(tasks_on(home, "child")) == 1, "the child", run)
        append_done(home, {**tasks_on(home, "child")[0], "result": "error", "msg": "boom"})
        wait_until(lambda: "retry 1/1 of child r1" in text(home, "run1.log"), "the retry", run)
        run.kill()  # kill -9 while the retry waits for its 3 s
    store = store_of(home)
    [waiting] = store.tasks(TaskFilter(state=State.WAITING))
    assert (waiting.origin, waiting.attempt, waiting.type) == (Origin.RETRY, 1, "child")
    assert waiting.due is not None
    store.close()
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: len(tasks_on(home, "child")) == 2, "the retry's send", again)
        sent_at = datetime.now(UTC)
        assert stop(again) == 0
    retry = tasks_on(home, "child")[1]
    assert (retry["id"], retry["meta"]) == ("r1", "workflow=chain.toml&retry=1")
    assert sent_at >= waiting.due  # sent at or after its due time, never before
    with flowlord_run(home, "run3.log") as third:  # and never again
        wait_until(lambda: "flowlord running" in text(home, "run3.log"), "a third start", third)
        assert stop(third) == 0
    assert len(tasks_on(home, "child")) == 2
    store = store_of(home)
    [sent] = store.tasks(TaskFilter(state=State.SENT, type="child"))
    assert sent.rec == waiting.rec
    assert [t.to_state for t in store.transitions(sent.rec)] == [
        State.WAITING, State.QUEUED, State.SENT,
    ]  # fmt: skip
    store.close()


def test_duplicate_and_external_done_messages(home: Path) -> None:
    """A done delivered twice, and again after a restart, dispatches once; a done for a task
    flowlord never sent (a person starting a chain) is recorded and resolved."""
    external = {"type": "parent", "info": "?day=2026-11-19", "id": "by-hand", "result": "complete"}
    append_done(home, external)
    append_done(home, external)
    with flowlord_run(home, "run1.log") as run:
        wait_until(lambda: "duplicate done for record" in text(home, "run1.log"), "dupe", run)
        assert stop(run) == 0
    append_done(home, external)
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: "duplicate done for record" in text(home, "run2.log"), "dupe", again)
        assert stop(again) == 0
    assert [t["id"] for t in tasks_on(home, "child")] == ["by-hand"]
    store = store_of(home)
    [parent] = store.run("by-hand")[:1]
    assert (parent.origin, parent.state, parent.type) == (Origin.EXTERNAL, State.COMPLETE, "parent")
    assert [r.type for r in store.run("by-hand")] == ["parent", "child"]
    store.close()


def test_cron_catch_up_after_downtime(home: Path) -> None:
    write(
        home / "wf",
        "tick.toml",
        """
[[Phase]]
task = "latest"
rule = "cron=* * * * * *"

[[Phase]]
task = "none"
rule = "cron=* * * * * *&catchup=none"

[[Phase]]
task = "all"
rule = "cron=* * * * * *&catchup=all"
""",
    )
    with flowlord_run(home, "run1.log") as run:
        wait_until(lambda: all(tasks_on(home, t) for t in ("latest", "none", "all")), "fires", run)
        assert stop(run) == 0
    time.sleep(3.5)  # the downtime itself: three or more instants go by unfired
    with flowlord_run(home, "run2.log") as again:
        wait_until(lambda: "flowlord running" in text(home, "run2.log"), "the restart", again)
        assert stop(again) == 0
    log = text(home, "run2.log")
    assert "catching up tick.toml: latest: 1 missed fire(s), older ones skipped" in log
    assert "catching up tick.toml: none: 0 missed fire(s), older ones skipped" in log
    caught_all = int(log.split("catching up tick.toml: all: ")[1].split(" ")[0])
    assert caught_all >= 3
    assert "catching up tick.toml: all: " + str(caught_all) + " missed fire(s) (catchup=all)" in log
    for topic in ("latest", "none", "all"):  # a cron instant is sent once, across restarts
        instants = [task["meta"] for task in tasks_on(home, topic)]
        assert len(instants) == len(set(instants)), topic


def test_a_standby_takes_over_when_the_leader_dies(home: Path) -> None:
    """A (lease 2 s) is killed with -9: its lease expires and B takes over and works. B holds
    a 60 s lease; stopped cleanly it releases it, so C takes over well before it would expire
    (the wait gives up after 30 s)."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(flowlord_run(home, "a.log", "--lease", "2s"))
        wait_until(lambda: "running as leader" in text(home, "a.log"), "A leads", first)
        second = stack.enter_context(flowlord_run(home, "b.log", "--lease", "60s"))
        wait_until(lambda: "standing by: the lease is held by" in text(home, "b.log"),
                   "B stands by", second)  # fmt: skip
        assert "running as standby" in text(home, "b.log")
        holder = text(home, "a.log").split("running as leader ")[1].split(":")[0]
        assert f"held by {holder}" in text(home, "b.log")
        first.kill()  # kill -9: the lease is not released; it expires within 2 s
        wait_until(lambda: "leading: holding the lease" in text(home, "b.log"), "takeover", second)
        append_done(home, {"type": "parent", "info": "?day=2026-11-20", "id": "after",
                           "result": "complete"})  # fmt: skip
        wait_until(lambda: any(t["id"] == "after" for t in tasks_on(home, "child")), "B works",
                   second)  # fmt: skip
        third = stack.enter_context(flowlord_run(home, "c.log"))
        wait_until(lambda: "standing by" in text(home, "c.log"), "C stands by", third)
        assert stop(second) == 0
        wait_until(lambda: "leading: holding" in text(home, "c.log"), "C takes over", third)
        assert stop(third) == 0
    assert "no longer leading" not in text(home, "b.log")
