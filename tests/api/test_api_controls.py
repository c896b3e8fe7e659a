"""Pause, resume, the controls and their audit, and refresh, through a real server: the API
shows what `flowlord controls --json` prints, changes what `flowlord pause | resume` change,
and refuses what they refuse (404, 409 or 422, with nothing written)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowlord.cli import main
from flowlord.state import TaskFilter, TaskRecord
from handlers.auth import WRITES_DISABLED
from tests.api.client import Api
from tests.api.conftest import Served, serve
from tests.records import add_record, phase_task
from workflow.controls import Control, ControlEvent
from workflow.state import State

ACTOR = "api@127.0.0.1"
EVERY = TaskFilter(limit=100_000)
ETL_PHASES = ["extract", "transform:orders", "transform:customers", "load:warehouse"]


def hold(served: Served, *where: tuple[str, str]) -> list[TaskRecord]:
    """One held record per (workflow, phase), a minute apart."""
    made = []
    for workflow, phase in where:
        served.clock.advance(minutes=1)
        task = phase_task(workflow, phase, f"test|{len(served.store.tasks(EVERY))}")
        made.append(add_record(served.store, task, workflow=workflow, phase=phase,
                               state=State.HELD))  # fmt: skip
    return made


@dataclass(frozen=True)
class Snapshot:
    controls: list[Control]
    events: list[ControlEvent]
    records: list[TaskRecord]


def snapshot(served: Served) -> Snapshot:
    """Everything a pause or resume could write."""
    store = served.store
    return Snapshot(
        store.controls(), store.control_events(limit=100_000),
        store.tasks(TaskFilter(limit=100_000)),
    )  # fmt: skip


def states(served: Served) -> dict[int, State]:
    return {r.rec: r.state for r in served.store.tasks(TaskFilter(limit=100_000))}


def put(api: Api, file: str, body: object, **options: object) -> dict[str, object]:
    reply = api.put(f"/api/controls/{file}", body, **options)
    assert reply.status == 200, reply.body
    return reply.json  # type: ignore[return-value]


# -- pause, resume, controls -------------------------------------------------------------------


def test_controls_before_any_pause(api: Api) -> None:
    assert api.get("/api/controls").json == {"controls": [], "events": []}
    assert api.get("/api/controls/events").json == {"events": []}


def test_pause_and_resume_a_workflow(api: Api, served: Served) -> None:
    first, second = hold(served, ("etl.toml", "extract"), ("etl.toml", "load:warehouse"))
    [other] = hold(served, ("reports/daily.toml", "publish"))
    paused = put(api, "etl.toml", {"enabled": False, "reason": "db migration"})
    assert {k: v for k, v in paused.items() if k != "seq"} == {
        "at": "2026-11-21T12:03:00Z", "workflow": "etl.toml", "phase": "", "actor": ACTOR,
        "from_enabled": None, "to_enabled": False, "reason": "db migration", "released": 0,
        "discarded": 0,
    }  # fmt: skip
    control = served.store.controls()[0]
    assert (control.workflow, control.enabled, control.updated_by) == ("etl.toml", False, ACTOR)
    resumed = put(api, "etl.toml", {"enabled": True, "reason": "done"})
    assert (resumed["from_enabled"], resumed["to_enabled"], resumed["released"]) == (False, True, 2)
    assert states(served) == {first.rec: State.QUEUED, second.rec: State.QUEUED,
                              other.rec: State.HELD}  # fmt: skip
    released = served.store.transitions(first.rec)[-1]
    assert (released.actor, released.reason) == (ACTOR, f"released: etl.toml resumed by {ACTOR}")
    assert [r.rec for r in served.store.due()] == [first.rec, second.rec]  # creation order


def test_pause_and_resume_one_phase_of_a_file_in_a_folder(api: Api, served: Served) -> None:
    publish, rollup = hold(
        served, ("reports/daily.toml", "publish"), ("reports/daily.toml", "rollup:regions")
    )
    paused = put(
        api, "reports/daily.toml", {"enabled": False, "reason": "late", "phase": "publish"}
    )
    assert (paused["workflow"], paused["phase"]) == ("reports/daily.toml", "publish")
    resumed = put(api, "reports/daily.toml", {"enabled": True, "phase": "publish",
                                              "discard_held": True})  # fmt: skip
    assert (resumed["released"], resumed["discarded"]) == (0, 1)
    assert states(served) == {publish.rec: State.CANCELLED, rollup.rec: State.HELD}


@pytest.mark.usefixtures("cli_home")
def test_controls_are_what_the_cli_prints_with_held_counts(
    api: Api, served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    hold(served, ("etl.toml", "extract"), ("etl.toml", "transform:orders"),
         ("etl.toml", "transform:orders"), ("ingest/files.toml", "heartbeat"))  # fmt: skip
    put(api, "etl.toml", {"enabled": False, "reason": "r"})
    put(api, "etl.toml", {"enabled": False, "reason": "r", "phase": "transform:orders"})
    put(api, "ingest/files.toml", {"enabled": False, "reason": "r"})
    put(api, "reports/daily.toml", {"enabled": False, "reason": "r", "phase": "publish"})
    put(api, "reports/daily.toml", {"enabled": True, "phase": "publish"})
    shown = api.get("/api/controls").json
    assert main(["controls", "--db", str(served.db), "--json"]) == 0
    assert shown == json.loads(capsys.readouterr().out)
    assert [(c["workflow"], c["phase"], c["enabled"], c["held"]) for c in shown["controls"]] == [
        ("etl.toml", "", False, 3), ("etl.toml", "transform:orders", False, 2),
        ("ingest/files.toml", "", False, 1), ("reports/daily.toml", "publish", True, 0),
    ]  # fmt: skip
    assert len(shown["events"]) == 5 and shown["events"][0]["to_enabled"] is True


def test_the_audit_newest_first_by_workflow(api: Api, served: Served) -> None:
    put(api, "etl.toml", {"enabled": False, "reason": "one"})
    put(api, "ingest/files.toml", {"enabled": False, "reason": "two"})
    put(api, "etl.toml", {"enabled": True})
    events = api.get("/api/controls/events").json["events"]
    assert [(e["workflow"], e["to_enabled"], e["reason"]) for e in events] == [
        ("etl.toml", True, ""), ("ingest/files.toml", False, "two"), ("etl.toml", False, "one"),
    ]  # fmt: skip
    etl = api.get("/api/controls/events?workflow=etl.toml").json["events"]
    assert [e["seq"] for e in etl] == [events[0]["seq"], events[2]["seq"]]
    assert api.get("/api/controls/events?limit=1").json["events"] == events[:1]
    assert api.get("/api/controls/events?workflow=").json["events"] == events
    assert api.get("/api/controls/events?limit=0").error()["field"] == "limit"


def test_a_gone_workflow_can_be_resumed_but_not_paused(api: Api, served: Served) -> None:
    """Its held records must not be stranded once its file is deleted."""
    put(api, "ingest/files.toml", {"enabled": False, "reason": "going away"})
    [record] = hold(served, ("ingest/files.toml", "heartbeat"))
    (served.folder / "ingest" / "files.toml").unlink()
    assert api.post("/api/refresh").json == {"changed": ["-ingest/files.toml"], "errors": {}}
    reply = api.put("/api/controls/ingest/files.toml", {"enabled": False, "reason": "r",
                                                         "phase": "heartbeat"})  # fmt: skip
    assert (reply.status, reply.error()) == (404, {
        "error": "unknown workflow 'ingest/files.toml': no workflow file has this key",
        "field": "file",
    })  # fmt: skip
    assert put(api, "ingest/files.toml", {"enabled": True})["released"] == 1
    assert states(served)[record.rec] is State.QUEUED


# -- refused: nothing written ------------------------------------------------------------------

REFUSED = [
    ("nope.toml", {"enabled": False, "reason": "r"}, 404, "file",
     "unknown workflow 'nope.toml'"),
    ("files.toml", {"enabled": True}, 404, "file", "unknown workflow 'files.toml'"),
    ("etl.toml", {"enabled": False, "reason": "r", "phase": "load"}, 404, "file",
     f"workflow 'etl.toml' has no phase 'load' (its phases: {', '.join(ETL_PHASES)})"),
    ("etl.toml", {"enabled": True, "phase": "nope"}, 404, "file", "has no phase 'nope'"),
    ("etl.toml", {"enabled": False, "reason": "again"}, 409, None,
     "etl.toml is already paused (by api@127.0.0.1 at "),
    ("etl.toml", {"enabled": True, "phase": "extract"}, 409, None,
     "etl.toml: extract is not paused"),
    ("reports/daily.toml", {"enabled": True}, 409, None, "reports/daily.toml is not paused"),
    ("reports/daily.toml", {"enabled": False, "reason": ""}, 422, "reason",
     "pausing reports/daily.toml needs a reason"),
    ("reports/daily.toml", {"enabled": False, "reason": " \t "}, 422, "reason", "needs a reason"),
    ("reports/daily.toml", {"enabled": False}, 422, "reason", "needs a reason"),
    ("reports/daily.toml", {"enabled": False, "reason": "two\nlines"}, 422, "reason",
     "must be one line of printable text"),
    ("etl.toml", {"enabled": True, "reason": "a\x00b"}, 422, "reason", "one line"),
    ("reports/daily.toml", {"enabled": False, "reason": "r", "discard_held": True}, 422,
     "discard_held", "applies to a resume"),
    ("reports/daily.toml", {"reason": "r"}, 422, "enabled", "enabled: "),
    ("reports/daily.toml", {"enabled": "false", "reason": "r"}, 422, "enabled", "enabled: "),
    ("reports/daily.toml", {"enabled": False, "reason": "r", "phse": "x"}, 422, "phse", ""),
    ("reports/daily.toml", ["enabled"], 422, "body", ""),
    ("../etl.toml", {"enabled": False, "reason": "r"}, 400, "file", ""),
    ("etl.yaml", {"enabled": False, "reason": "r"}, 400, "file", ""),
    ("/etc/x.toml", {"enabled": False, "reason": "r"}, 400, "file", ""),
]  # fmt: skip


@pytest.mark.parametrize(("file", "body", "status", "field", "message"), REFUSED,
                         ids=[f"{f} {b}" for f, b, *_ in REFUSED])  # fmt: skip
def test_a_refused_change_writes_nothing(
    api: Api,
    served: Served,
    file: str,
    body: object,
    status: int,
    field: str | None,
    message: str,
) -> None:
    hold(served, ("etl.toml", "extract"), ("reports/daily.toml", "publish"))
    put(api, "etl.toml", {"enabled": False, "reason": "first"})
    before = snapshot(served)
    reply = api.put(f"/api/controls/{file}", body)
    assert reply.status == status, reply.body
    assert message in str(reply.error()["error"])
    assert reply.error().get("field") == field
    assert snapshot(served) == before


def test_writes_need_the_admin_token(api: Api, served: Served) -> None:
    hold(served, ("etl.toml", "extract"))
    before = snapshot(served)
    pause = {"enabled": False, "reason": "r"}
    for token, status in ((None, 401), ("not-the-token", 403)):
        assert api.put("/api/controls/etl.toml", pause, token=token).status == status
        assert api.post("/api/refresh", token=token).status == status
    # The token is checked before anything else: a bad body or key without one is a 401.
    assert api.put("/api/controls/../x", {"bad": 1}, token=None).status == 401
    assert snapshot(served) == before
    assert served.changes == []


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Served]:
    """A server with no admin token: every write is refused."""
    yield from serve(tmp_path / "read-only", token="")


def test_a_server_without_a_token_refuses_writes(read_only: Served) -> None:
    before = snapshot(read_only)
    for token in (None, "anything"):
        reply = read_only.api.put("/api/controls/etl.toml", {"enabled": False, "reason": "r"},
                                  token=token)  # fmt: skip
        assert (reply.status, reply.error()) == (403, {"error": WRITES_DISABLED})
        reply = read_only.api.post("/api/refresh", token=token)
        assert (reply.status, reply.error()) == (403, {"error": WRITES_DISABLED})
    assert snapshot(read_only) == before
    assert read_only.changes == []
    assert read_only.api.get("/api/controls").status == 200  # reads still work


# -- refresh -----------------------------------------------------------------------------------


def test_refresh_reports_changed_files_and_errors(api: Api, served: Served) -> None:
    assert api.post("/api/refresh").json == {"changed": [], "errors": {}}
    etl = served.folder / "etl.toml"
    etl.write_text(etl.read_text() + '\n[[Phase]]\ntask = "audit"\ndependsOn = "extract"\n')
    (served.folder / "reports" / "daily.toml").write_text("[[Phase]\nnot toml")
    reply = api.post("/api/refresh")
    assert reply.status == 200
    assert reply.json["changed"] == ["etl.toml"]
    assert list(reply.json["errors"]) == ["reports/daily.toml"]
    assert served.changes == [["etl.toml"]]
    # The refreshed phases are what a pause checks against.
    assert put(api, "etl.toml", {"enabled": False, "reason": "r", "phase": "audit"})["phase"] == \
        "audit"  # fmt: skip
