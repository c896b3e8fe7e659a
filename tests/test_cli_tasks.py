"""`flowlord tasks | task | alerts | stats | retry | cancel`: called as functions of argv on a
real database, and beside a real `flowlord run`, which sees their writes within a turn."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlord.cli import main
from flowlord.state import NewRecord, SQLiteTaskStore
from tests.conftest import write
from tests.processes import ROOT, flowlord_run, text, wait_until
from tests.test_durability import append_done, tasks_on
from workflow import Task
from workflow.state import Origin, State

pytestmark = pytest.mark.usefixtures("cli_home")


@pytest.fixture
def db(cli_home: Path) -> Iterator[str]:
    """Three records of one run: a complete parent, a sent child, a waiting retry; an alert."""
    path = cli_home / "flowlord.db"
    store = SQLiteTaskStore(path, now=lambda: datetime.now(UTC))
    with store.transaction() as tx:
        parent, child = tx.add([
            NewRecord(task=Task(type="extract", id="r1", meta="workflow=w.toml"),
                      workflow="w.toml", phase="extract", origin=Origin.CRON,
                      origin_key="cron|1", state=State.SENT),
            NewRecord(task=Task(type="load", job="db", id="r1", info="?day=1",
                                meta="workflow=w.toml&job=db"),
                      workflow="w.toml", phase="load:db", origin=Origin.CHILD,
                      origin_key="child|1", state=State.QUEUED),
        ], actor="test", reason="made")  # fmt: skip
        assert parent is not None and child is not None
        tx.move(parent.rec, State.COMPLETE, actor="worker", reason="done: complete")
        tx.alert("failed", "load r1 failed", workflow="w.toml", phase="load:db", rec=child.rec)
    store.close()
    yield str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tasks_lists_newest_first_with_column_names(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, _ = run(capsys, "tasks", "--db", db, "--json")
    assert code == 0
    rows = json.loads(out)["tasks"]
    assert [r["rec"] for r in rows] == [2, 1]
    assert set(rows[0]) >= {
        "rec", "id", "type", "job", "info", "meta", "workflow", "phase", "attempt", "origin",
        "state", "result", "msg", "created", "due", "sent", "started", "ended", "updated",
    }  # fmt: skip
    assert rows[1]["state"] == "complete" and rows[1]["ended"].endswith("Z")
    datetime.fromisoformat(rows[0]["created"])  # RFC 3339
    _, out, _ = run(capsys, "tasks", "--db", db, "--state", "queued", "--type", "load", "--json")
    assert [r["rec"] for r in json.loads(out)["tasks"]] == [2]
    _, out, _ = run(capsys, "tasks", "--db", db, "--since", "1h", "--limit", "1")
    assert out.splitlines()[0].split()[:3] == ["rec", "state", "type"]
    assert len(out.splitlines()) == 2


def test_task_shows_the_transitions(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "task", "1", "--db", db, "--json")
    record = json.loads(out)
    assert code == 0 and record["state"] == "complete"
    assert [(t["from_state"], t["to_state"], t["actor"]) for t in record["transitions"]] == [
        (None, "sent", "test"), ("sent", "complete", "worker"),
    ]  # fmt: skip
    code, out, _ = run(capsys, "task", "2", "--db", db)
    assert code == 0 and "origin_key child|1" in " ".join(out.split())


def test_alerts_and_stats(capsys: pytest.CaptureFixture[str], db: str) -> None:
    _, out, _ = run(capsys, "alerts", "--db", db, "--kind", "failed", "--json")
    [alert] = json.loads(out)["alerts"]
    assert (alert["kind"], alert["rec"], alert["message"]) == ("failed", 2, "load r1 failed")
    _, out, _ = run(capsys, "alerts", "--db", db, "--since", "2030-01-01T00:00:00Z", "--json")
    assert json.loads(out)["alerts"] == []
    _, out, _ = run(capsys, "stats", "--db", db, "--json")
    stats = json.loads(out)
    assert set(stats) == {"states", "by_age", "db_bytes", "alerts"}
    assert (stats["states"]["complete"], stats["states"]["queued"], stats["alerts"]) == (1, 1, 1)
    assert stats["by_age"] == {"24h": 2, "7d": 0, "30d": 0, "older": 0}
    assert stats["db_bytes"] > 0


def test_retry_makes_a_new_manual_attempt_of_a_finished_record(
    capsys: pytest.CaptureFixture[str], db: str
) -> None:
    code, out, _ = run(capsys, "retry", "1", "--db", db, "--by", "ana", "--json")
    new = json.loads(out)
    assert code == 0
    assert (new["origin"], new["attempt"], new["state"], new["id"]) == ("manual", 1, "queued", "r1")
    assert new["meta"] == "workflow=w.toml&retry=1"
    _, out, _ = run(capsys, "task", str(new["rec"]), "--db", db, "--json")
    assert json.loads(out)["transitions"][0]["actor"] == "cli:ana"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["retry", "2"], "record 2 is queued: only a finished record can be retried"),
        (["cancel", "1"], "record 1 cannot go from complete to cancelled"),
        (["cancel", "99"], "no task record has rec 99"),
        (["task", "99"], "no task record has rec 99"),
        (["tasks", "--since", "yesterday"], "'yesterday' is neither an RFC 3339 time"),
        (["task", "-1"], "'-1' is not a record number"),
    ],
)
def test_bad_requests_exit_2_and_change_nothing(
    capsys: pytest.CaptureFixture[str], db: str, argv: list[str], message: str
) -> None:
    before = run(capsys, "tasks", "--db", db, "--json")[1]
    code, out, err = run(capsys, *argv, "--db", db)
    assert code == 2, out
    assert err.startswith("flowlord: ") and message in err and len(err.splitlines()) == 1
    assert run(capsys, "tasks", "--db", db, "--json")[1] == before


def test_cancel_with_a_reason(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "cancel", "2", "--db", db, "--reason", "bad data", "--json")
    assert code == 0 and json.loads(out)["state"] == "cancelled"
    _, out, _ = run(capsys, "task", "2", "--db", db, "--json")
    assert json.loads(out)["transitions"][-1]["reason"] == "bad data"


CHAIN = """
[[Phase]]
task = "parent"
rule = "cron=0 0 1 1 *"

[[Phase]]
task = "child"
dependsOn = "parent"
rule = "retry_delay=1s"
retry = 2
"""


def cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowlord", *argv, "--json"], cwd=home, capture_output=True,
        text=True, timeout=30, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def listed(home: Path, state: str, type_: str) -> list[dict[str, object]]:
    done = cli(home, "tasks", "--state", state, "--type", type_)
    return json.loads(done.stdout)["tasks"] if done.returncode == 0 else []


@pytest.mark.slow
def test_retry_and_cancel_beside_a_running_flowlord(cli_home: Path) -> None:
    home = cli_home
    write(home / "wf", "chain.toml", CHAIN)
    (home / "bus").mkdir()
    with flowlord_run(home, "run.log") as flowlord:
        wait_until(lambda: "running as leader" in text(home, "run.log"), "start", flowlord)
        append_done(home, {"type": "parent", "id": "r1", "result": "complete"})
        wait_until(lambda: len(tasks_on(home, "child")) == 1, "the child", flowlord)
        append_done(home, {**tasks_on(home, "child")[0], "result": "complete"})
        wait_until(lambda: listed(home, "complete", "child"), "the child complete", flowlord)
        [child] = listed(home, "complete", "child")
        done = cli(home, "retry", str(child["rec"]))
        assert done.returncode == 0, done.stderr
        wait_until(lambda: len(tasks_on(home, "child")) == 2, "the manual retry", flowlord)
        assert tasks_on(home, "child")[1]["meta"] == "workflow=chain.toml&retry=1"
        # A failed attempt waits 1 s to be retried; cancelled meanwhile, it is never sent.
        append_done(home, {**tasks_on(home, "child")[1], "result": "error"})
        wait_until(lambda: listed(home, "waiting", "child"), "the waiting retry", flowlord)
        [waiting] = listed(home, "waiting", "child")
        assert cli(home, "cancel", str(waiting["rec"]), "--reason", "enough").returncode == 0
        due = datetime.fromisoformat(waiting["due"])
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)  # past its time
        append_done(home, {"type": "parent", "id": "r2", "result": "complete"})  # a later turn
        wait_until(lambda: any(t["id"] == "r2" for t in tasks_on(home, "child")), "r2", flowlord)
    assert [t["id"] for t in tasks_on(home, "child")] == ["r1", "r1", "r2"]
    assert timedelta(0) < due - datetime.fromisoformat(waiting["created"]) < timedelta(seconds=2)
