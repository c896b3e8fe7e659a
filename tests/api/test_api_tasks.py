"""Task records, runs, alerts and held tasks, retry and cancel, through a real server: the API
shows what `flowlord tasks | task | alerts` print, refuses what `flowlord retry | cancel`
refuse (with 404, 409 or 422, and nothing written), and answers no input with a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowlord.cli import main
from flowlord.state import TaskFilter, TaskRecord, Transition
from handlers.auth import WRITES_DISABLED
from tests.api.client import Api
from tests.api.conftest import Served, serve
from tests.records import add_record
from workflow import Task
from workflow.state import Origin, State

ACTOR = "api@127.0.0.1"


def add(served: Served, *records: tuple[Task, str, State], minutes: float = 1) -> list[TaskRecord]:
    """One record per (task, phase, state) of etl.toml, each a few minutes after the last."""
    made = []
    for task, phase, state in records:
        served.clock.advance(minutes=minutes)
        made.append(add_record(served.store, task, workflow="etl.toml", phase=phase, state=state))
    return made


@dataclass(frozen=True)
class Run:
    """r1: a complete extract, a queued transform:orders; r2: a held extract; an alert."""

    done: TaskRecord
    queued: TaskRecord
    held: TaskRecord


@pytest.fixture
def run(served: Served) -> Run:
    done, queued, held = add(
        served,
        (Task(type="extract", id="r1", meta="workflow=etl.toml"), "extract", State.SENT),
        (Task(type="transform", job="orders", id="r1", info="?day=1"), "transform:orders",
         State.QUEUED),
        (Task(type="extract", id="r2"), "extract", State.HELD),
    )  # fmt: skip
    with served.store.transaction() as tx:
        done = tx.move(done.rec, State.COMPLETE, actor="worker", reason="done: complete")
        tx.alert("failed", "transform r1 failed", workflow="etl.toml", phase="transform:orders",
                 rec=queued.rec)  # fmt: skip
        tx.alert("stuck", "extract r2 is stuck", workflow="etl.toml", phase="extract")
    return Run(done, queued, held)


@dataclass(frozen=True)
class Stored:
    records: list[TaskRecord]
    transitions: list[list[Transition]]


def stored(served: Served) -> Stored:
    """Everything a retry or cancel could write."""
    records = served.store.tasks(TaskFilter(limit=100_000))
    return Stored(records, [served.store.transitions(r.rec) for r in records])


def cli_json(capsys: pytest.CaptureFixture[str], served: Served, *argv: str) -> object:
    assert main([*argv, "--db", str(served.db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- reads: what the CLI prints ----------------------------------------------------------------


@pytest.mark.usefixtures("cli_home")
def test_tasks_and_a_task_are_what_the_cli_prints(
    api: Api, served: Served, run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    page = api.get("/api/tasks").json
    assert page == {**cli_json(capsys, served, "tasks"), "next_cursor": None}  # type: ignore[dict-item]
    assert [t["rec"] for t in page["tasks"]] == [run.held.rec, run.queued.rec, run.done.rec]
    assert set(page["tasks"][0]) >= {
        "rec", "id", "type", "job", "info", "meta", "workflow", "phase", "attempt", "origin",
        "state", "result", "msg", "created", "due", "sent", "started", "ended", "updated",
    }  # fmt: skip
    detail = api.get(f"/api/tasks/{run.done.rec}").json
    assert detail == cli_json(capsys, served, "task", str(run.done.rec))
    assert [(t["from_state"], t["to_state"], t["actor"]) for t in detail["transitions"]] == [
        (None, "sent", "test"), ("sent", "complete", "worker"),
    ]  # fmt: skip
    assert detail["ended"] == "2026-11-21T12:03:00Z"
    assert api.get("/api/alerts").json == cli_json(capsys, served, "alerts")


def test_tasks_filters(api: Api, served: Served, run: Run) -> None:
    def recs(query: str) -> list[int]:
        reply = api.get(f"/api/tasks?{query}")
        assert reply.status == 200, reply.body
        return [t["rec"] for t in reply.json["tasks"]]

    assert recs("state=complete") == [run.done.rec]
    assert recs("type=extract") == [run.held.rec, run.done.rec]
    assert recs("type=transform&job=orders") == [run.queued.rec]
    assert recs("job=") == [run.held.rec, run.queued.rec, run.done.rec]  # blank: no filter
    assert recs("id=r1&state=&type=") == [run.queued.rec, run.done.rec]
    assert recs("workflow=etl.toml&id=r2") == [run.held.rec]
    assert recs("workflow=reports%2Fdaily.toml") == []
    # created 12:01, 12:02, 12:03; the clock is at 12:03
    assert recs("since=2026-11-21T12:02:00Z") == [run.held.rec, run.queued.rec]
    assert recs("until=2026-11-21T13:02:00%2B01:00") == [run.done.rec]  # until is exclusive
    assert recs("since=90s") == [run.held.rec, run.queued.rec]  # back from the API's clock
    assert recs("since=2m&until=1m") == [run.done.rec]


def test_tasks_come_in_pages_that_follow_the_cursor(api: Api, served: Served) -> None:
    made = add(served, *[(Task(type="extract", id=f"p{n}"), "extract", State.QUEUED)
                         for n in range(5)])  # fmt: skip
    newest_first = [r.rec for r in reversed(made)]
    first = api.get("/api/tasks?limit=2").json
    assert [t["rec"] for t in first["tasks"]] == newest_first[:2]
    assert first["next_cursor"] == str(newest_first[1])
    second = api.get(f"/api/tasks?limit=2&cursor={first['next_cursor']}").json
    assert [t["rec"] for t in second["tasks"]] == newest_first[2:4]
    last = api.get(f"/api/tasks?limit=2&cursor={second['next_cursor']}").json
    assert ([t["rec"] for t in last["tasks"]], last["next_cursor"]) == ([newest_first[4]], None)
    # A page that ends exactly at the last record says so: no cursor to an empty page.
    exact = api.get(f"/api/tasks?limit=4&cursor={newest_first[0]}").json
    assert ([t["rec"] for t in exact["tasks"]], exact["next_cursor"]) == (newest_first[1:], None)
    assert api.get("/api/tasks?limit=1000").json["next_cursor"] is None


BAD_QUERIES = [
    ("/api/tasks?limit=0", "limit"), ("/api/tasks?limit=1001", "limit"),
    ("/api/tasks?limit=abc", "limit"), ("/api/tasks?state=running", "state"),
    ("/api/tasks?since=yesterday", "since"), ("/api/tasks?until=2026-11-21", "until"),
    ("/api/tasks?since=0001-01-01T00:00:00%2B01:00", "since"),
    ("/api/tasks?since=-99999999h", "since"), ("/api/tasks?cursor=abc", "cursor"),
    ("/api/tasks?cursor=-1", "cursor"), ("/api/tasks?cursor=" + "9" * 30, "cursor"),
    ("/api/alerts?kind=nope", "kind"), ("/api/alerts?limit=0", "limit"),
    ("/api/alerts?since=tomorrow", "since"), ("/api/held?limit=5000", "limit"),
    ("/api/tasks/0", "rec"), ("/api/tasks/-1", "rec"), ("/api/tasks/" + "1" + "0" * 30, "rec"),
    ("/api/tasks/1.5", "rec"), ("/api/tasks/one", "rec"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "field"), BAD_QUERIES, ids=[p for p, _ in BAD_QUERIES])
def test_a_bad_parameter_is_a_422_naming_it(api: Api, run: Run, path: str, field: str) -> None:
    reply = api.get(path)
    assert reply.status == 422, reply.body
    assert reply.error()["field"] == field
    assert str(reply.error()["error"]).startswith(f"{field}: ")


def test_an_unknown_record_or_run_is_a_404(api: Api, run: Run) -> None:
    reply = api.get("/api/tasks/99")
    assert (reply.status, reply.error()) == (
        404, {"error": "no task record has rec 99", "field": "rec"},
    )  # fmt: skip
    reply = api.get(f"/api/tasks/{2**63 - 1}")
    assert reply.status == 404
    reply = api.get("/api/runs/nope")
    assert (reply.status, reply.error()) == (404, {"error": "run 'nope' not found", "field": "id"})


def test_a_run_is_every_record_of_its_id_oldest_first(api: Api, served: Served, run: Run) -> None:
    [retry] = add(served, (Task(type="extract", id="r1"), "extract", State.QUEUED))
    reply = api.get("/api/runs/r1")
    assert reply.status == 200
    assert reply.json["id"] == "r1"
    assert [t["rec"] for t in reply.json["tasks"]] == [run.done.rec, run.queued.rec, retry.rec]
    [odd] = add(served, (Task(type="extract", id="2026/11/21 #1"), "extract", State.QUEUED))
    reply = api.get("/api/runs/2026/11/21%20%231")
    assert [t["rec"] for t in reply.json["tasks"]] == [odd.rec]


def test_alerts_by_kind_and_time(api: Api, served: Served, run: Run) -> None:
    every = api.get("/api/alerts").json["alerts"]
    assert [(a["kind"], a["rec"]) for a in every] == [("stuck", None), ("failed", run.queued.rec)]
    [failed] = api.get("/api/alerts?kind=failed").json["alerts"]
    assert (failed["message"], failed["workflow"], failed["at"]) == (
        "transform r1 failed", "etl.toml", "2026-11-21T12:03:00Z",
    )  # fmt: skip
    assert api.get("/api/alerts?since=2026-11-21T12:03:00Z&kind=").json["alerts"] == every
    assert api.get("/api/alerts?since=2026-11-21T12:03:01Z").json["alerts"] == []
    assert len(api.get("/api/alerts?limit=1").json["alerts"]) == 1


def test_held_lists_held_records_only(api: Api, served: Served, run: Run) -> None:
    [other] = add(served, (Task(type="extract", id="r3"), "extract", State.HELD))
    page = api.get("/api/held").json
    assert ([t["rec"] for t in page["tasks"]], page["next_cursor"]) == (
        [other.rec, run.held.rec], None,
    )  # fmt: skip
    assert {t["state"] for t in page["tasks"]} == {"held"}
    page = api.get("/api/held?limit=1").json
    assert ([t["rec"] for t in page["tasks"]], page["next_cursor"]) == ([other.rec], str(other.rec))
    assert api.get("/api/held?workflow=ingest%2Ffiles.toml").json["tasks"] == []


# -- retry and cancel --------------------------------------------------------------------------


def test_retry_queues_a_new_manual_attempt(api: Api, served: Served, run: Run) -> None:
    reply = api.post(f"/api/tasks/{run.done.rec}/retry")
    assert reply.status == 201, reply.body
    new = reply.json
    assert (new["origin"], new["attempt"], new["state"], new["id"], new["type"]) == (
        "manual", 1, "queued", "r1", "extract",
    )  # fmt: skip
    assert new["meta"] == "workflow=etl.toml&retry=1"
    stored_new = served.store.get(new["rec"])
    assert (stored_new.state, stored_new.origin) == (State.QUEUED, Origin.MANUAL)
    [made] = served.store.transitions(new["rec"])
    assert (made.actor, made.reason) == (ACTOR, f"retry of record {run.done.rec}")


def test_a_retry_asked_twice_makes_one_attempt(api: Api, served: Served, run: Run) -> None:
    first = api.post(f"/api/tasks/{run.done.rec}/retry").json
    before = stored(served)
    reply = api.post(f"/api/tasks/{run.done.rec}/retry")
    assert reply.status == 409
    assert reply.error() == {
        "error": f"record {run.done.rec} was retried already: its attempt 1 is record "
        f"{first['rec']}"
    }
    assert stored(served) == before


def test_cancel_with_and_without_a_reason(api: Api, served: Served, run: Run) -> None:
    reply = api.post(f"/api/tasks/{run.queued.rec}/cancel", {"reason": "bad data"})
    assert reply.status == 200, reply.body
    assert (reply.json["rec"], reply.json["state"]) == (run.queued.rec, "cancelled")
    assert reply.json["ended"] == "2026-11-21T12:03:00Z"
    last = served.store.transitions(run.queued.rec)[-1]
    assert (last.to_state, last.actor, last.reason) == (State.CANCELLED, ACTOR, "bad data")
    assert api.post(f"/api/tasks/{run.held.rec}/cancel").json["state"] == "cancelled"
    assert served.store.transitions(run.held.rec)[-1].reason == "cancelled"


REFUSED = [
    ("queued/retry", 409, None, "is queued: only a finished record can be retried"),
    ("done/cancel", 409, None, "cannot go from complete to cancelled"),
    ("99/retry", 404, "rec", "no task record has rec 99"),
    ("99/cancel", 404, "rec", "no task record has rec 99"),
    ("0/cancel", 422, "rec", "rec: "),
    (f"{10**30}/retry", 422, "rec", "rec: "),
    ("-1/retry", 422, "rec", "rec: "),
]  # fmt: skip


@pytest.mark.parametrize(("target", "status", "field", "message"), REFUSED,
                         ids=[t for t, *_ in REFUSED])  # fmt: skip
def test_a_refused_write_changes_nothing(
    api: Api, served: Served, run: Run, target: str, status: int, field: str | None, message: str
) -> None:
    which, action = target.split("/")
    rec = {"queued": str(run.queued.rec), "done": str(run.done.rec)}.get(which, which)
    before = stored(served)
    reply = api.post(f"/api/tasks/{rec}/{action}")
    assert reply.status == status
    assert message in str(reply.error()["error"])
    assert reply.error().get("field") == field
    assert stored(served) == before


@pytest.mark.parametrize(
    "body",
    [{"reason": "two\nlines"}, {"reason": "x" * 1001}, {"reason": 5}, {"why": "typo"}, ["x"]],
)
def test_a_bad_cancel_body_is_a_422_and_changes_nothing(
    api: Api, served: Served, run: Run, body: object
) -> None:
    before = stored(served)
    reply = api.post(f"/api/tasks/{run.queued.rec}/cancel", body)
    assert reply.status == 422, reply.body
    assert stored(served) == before


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_writes_need_the_admin_token(api: Api, served: Served, run: Run, action: str) -> None:
    rec = run.done.rec if action == "retry" else run.queued.rec
    before = stored(served)
    reply = api.post(f"/api/tasks/{rec}/{action}", token=None)
    assert reply.status == 401 and "admin token is required" in str(reply.error()["error"])
    reply = api.post(f"/api/tasks/{rec}/{action}", token="not-the-token")
    assert reply.status == 403 and reply.error() == {"error": "wrong admin token"}
    assert stored(served) == before


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Served]:
    """A server with no admin token: every write is refused."""
    yield from serve(tmp_path / "read-only", token="")


@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_a_server_without_a_token_refuses_writes(read_only: Served, action: str) -> None:
    [record] = add(read_only, (Task(type="extract", id="r1"), "extract", State.QUEUED))
    with read_only.store.transaction() as tx:
        tx.move(record.rec, State.COMPLETE, actor="worker", reason="done")
    before = stored(read_only)
    for token in (None, "anything"):
        reply = read_only.api.post(f"/api/tasks/{record.rec}/{action}", token=token)
        assert (reply.status, reply.error()) == (403, {"error": WRITES_DISABLED})
    assert stored(read_only) == before
    assert read_only.api.get(f"/api/tasks/{record.rec}").status == 200  # reads still work


ODD_INPUTS = [
    "/api/tasks?type=%00", "/api/tasks?id=%FF%FE", "/api/tasks?job=" + "j" * 5000,
    "/api/tasks?since=9999-12-31T23:59:59-01:00", "/api/tasks?since=99999999999999999999h",
    "/api/tasks?limit=99999999999999999999999", "/api/tasks?cursor=9223372036854775808",
    "/api/tasks/9223372036854775808", "/api/runs/%00", "/api/runs/", "/api/alerts?kind=%00",
    "/api/held?workflow=%2E%2E%2Fx", "/api/tasks?state=HELD",
]  # fmt: skip


@pytest.mark.parametrize("path", ODD_INPUTS)
def test_no_input_gets_a_5xx(api: Api, run: Run, path: str) -> None:
    reply = api.get(path)
    assert 200 <= reply.status < 500, (reply.status, reply.body)
    if reply.status >= 400:
        reply.error()


def test_no_write_input_gets_a_5xx(api: Api, run: Run) -> None:
    for path in [f"/api/tasks/{2**63}/retry", f"/api/tasks/{2**63 - 1}/cancel",
                 "/api/tasks/%00/retry"]:  # fmt: skip
        reply = api.post(path)
        assert 400 <= reply.status < 500, (path, reply.status, reply.body)
    reply = api.post(f"/api/tasks/{run.queued.rec}/cancel", body=b"\xff\xfe")
    assert reply.status in (400, 422)
