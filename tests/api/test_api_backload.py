"""POST /api/backload through a real server: dry runs write nothing, executing records the
tasks for the leader's outbox (held while paused), and no input gets a 5xx."""

from __future__ import annotations

import pytest

from tests.api.client import Api, Reply
from tests.api.conftest import Served
from workflow.query import parse_query
from workflow.state import Origin, State

PATH = "/api/backload"
RANGE = {"task": "extract", "from": "2026-01-01", "to": "2026-01-03"}
INFOS = ["s3://raw/2026/01/01/", "s3://raw/2026/01/02/", "s3://raw/2026/01/03/"]


def infos(reply: Reply) -> list[str]:
    return [task["info"] for task in reply.json["tasks"]]  # type: ignore[index]


def test_a_dry_run_needs_no_token_and_writes_nothing(served: Served) -> None:
    reply = served.anonymous.post(PATH, RANGE)
    assert reply.status == 200, reply.text
    body = reply.json
    assert body["status"] == "DRY RUN ONLY: phase found in etl.toml, using default day iterator"
    assert body["count"] == 3 and infos(reply) == INFOS
    assert "records" not in body
    first = body["tasks"][0]
    assert set(first) == {"type", "job", "info", "meta", "id", "created"}
    assert (first["type"], first["job"], first["created"]) == (
        "extract",
        "",
        "2026-11-21T12:00:00Z",
    )
    assert parse_query(first["meta"]) == {"workflow": "etl.toml", "cron": "2026-01-01T00:00:00Z"}
    assert served.store.tasks() == []


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong-token", 403)])
def test_executing_needs_the_admin_token(served: Served, token: str | None, status: int) -> None:
    reply = served.api.post(PATH, {**RANGE, "execute": True}, token=token)
    assert reply.status == status and reply.error()["error"]
    assert served.store.tasks() == []


def test_executing_records_queued_backload_tasks(served: Served) -> None:
    reply = served.api.post(PATH, {**RANGE, "execute": True})
    assert reply.status == 200, reply.text
    body = reply.json
    assert body["status"].startswith("Executed: phase found in etl.toml")
    assert body["count"] == 3 and infos(reply) == INFOS
    records = sorted(served.store.tasks(), key=lambda record: record.rec)
    assert body["records"] == [record.rec for record in records]
    assert [record.info for record in records] == INFOS
    assert [task["id"] for task in body["tasks"]] == [record.id for record in records]
    assert len({record.id for record in records}) == 3  # each task is a run of its own
    for record in records:
        assert (record.origin, record.state) == (Origin.BACKLOAD, State.QUEUED)
        assert (record.workflow, record.phase, record.type, record.attempt) == (
            "etl.toml", "extract", "extract", 0
        )  # fmt: skip
        assert record.origin_key.startswith("backload|")
        [transition] = served.store.transitions(record.rec)
        assert (transition.to_state, transition.actor) == (State.QUEUED, "api@127.0.0.1")
    again = served.api.post(PATH, {**RANGE, "execute": True})  # another request: new records
    assert len(served.store.tasks()) == 6 and set(again.json["records"]).isdisjoint(body["records"])


@pytest.mark.parametrize("phase", ["", "extract"])
def test_a_paused_workflow_or_phase_gets_held_records(served: Served, phase: str) -> None:
    with served.store.transaction() as tx:
        tx.set_control("etl.toml", phase, enabled=False, reason="migration", actor="ann")
    dry = served.api.post(PATH, RANGE)
    assert "would be held: etl.toml" in dry.json["status"] and served.store.tasks() == []
    reply = served.api.post(PATH, {**RANGE, "execute": True})
    assert reply.status == 200, reply.text
    assert "held: etl.toml" in reply.json["status"] and "migration" in reply.json["status"]
    states = {record.state for record in served.store.tasks()}
    assert states == {State.HELD} and len(served.store.tasks()) == 3


def test_a_go_cased_request_works(served: Served) -> None:
    (served.folder / "reports" / "regions.csv").write_text("region\nus\neu\n")
    reply = served.api.post(PATH, {
        "Task": "rollup", "Job": "regions", "From": "2026-03-01T05", "To": "2026-03-01T06",
        "By": "hour", "Metafile": "regions.csv", "Execute": True,
    })  # fmt: skip
    assert reply.status == 200, reply.text
    assert infos(reply) == [
        "?region=us&hour=2026-03-01T05", "?region=eu&hour=2026-03-01T05",
        "?region=us&hour=2026-03-01T06", "?region=eu&hour=2026-03-01T06",
    ]  # fmt: skip
    assert reply.json["status"] == "Executed: phase found in reports/daily.toml"
    records = served.store.tasks()
    assert {(r.workflow, r.phase, r.job, r.origin) for r in records} == {
        ("reports/daily.toml", "rollup:regions", "regions", Origin.BACKLOAD)
    }
    assert {parse_query(r.meta)["region"] for r in records} == {"us", "eu"}
    dry = served.api.post(PATH, {"Task": "rollup:regions", "At": "2026-03-01", "Meta": {
        "region": "apac"}, "meta-file": None})  # fmt: skip
    assert dry.status == 200 and infos(dry) == ["?region=apac&hour=2026-03-01T00"], dry.text


def test_the_phases_meta_is_the_default(api: Api) -> None:
    reply = api.post(PATH, {"task": "rollup:regions", "at": "2026-03-01T07"})
    assert infos(reply) == [f"?region={r}&hour=2026-03-01T07" for r in ("us", "eu", "apac")]
    assert reply.json["status"].endswith("meta region:us,eu,apac of the phase rule")


BAD = [
    ({"task": "extract", "from": "2026-02-01", "to": "2026-01-01"}, 422, "from"),
    ({"task": "extract", "from": "2026-1-1"}, 400, "from"),
    ({"task": "extract", "at": "2026-02-30"}, 400, "at"),
    ({"task": "extract", "by": "week"}, 422, "by"),
    ({"task": "nope"}, 404, "task"),
    ({"task": "extract", "workflow": "reports/daily.toml"}, 404, "task"),
    ({"task": "rollup:regions", "meta": {"region": "x"}, "meta_file": "r.csv"}, 400, "meta"),
    ({"task": "extract", "template": "{meta:nope}"}, 422, "template"),
    ({"task": "extract", "meta_file": "../../../etc/passwd.csv"}, 422, "meta_file"),
    ({"task": "rollup", "meta-file": "\0"}, 422, "meta_file"),
    ({"task": "extract", "from": "0001-01-01", "to": "9999-12-31T23", "by": "hour"}, 422, "to"),
    ({"task": "extract", "at": "0001-01-01T00:00:00+01:00"}, 400, "at"),
    ({"task": "extract", "Meta": 5}, 422, "Meta"),
    ({"task": "extract", "From": []}, 422, "From"),
    ({"task": "extract", "meta": {"k": [1]}}, 422, "meta.k.0"),
    ({"task": "extract", "meta": {"k": "v" * 5000}}, 422, "meta.k.0"),
    ({"task": "extract", "execute": "yes"}, 422, "execute"),
    ({"task": "extract", "form": "2026-01-01"}, 422, "form"),
    ({"task": "extract", "Task": "extract"}, 422, "body"),
    ({"task": ""}, 422, "task"),
    ({"task": None}, 422, "task"),
    ({}, 422, "task"),
    ([], 422, "body"),
    ("extract", 422, "body"),
    (5, 422, "body"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD)
def test_bad_requests_get_a_4xx_naming_the_field_and_write_nothing(
    api: Api, served: Served, body: object, status: int, field: str
) -> None:
    if isinstance(body, dict):
        body = {**body, "execute": body.get("execute", True)}
    reply = api.post(PATH, body)
    assert (reply.status, reply.error().get("field")) == (status, field), reply.text
    assert served.store.tasks() == []


def test_a_body_that_is_not_json_is_a_400(api: Api) -> None:
    reply = api.request("POST", PATH, body=b"{task", headers={"Content-Type": "application/json"})
    assert reply.status == 400


def test_the_openapi_document_describes_both_spellings(api: Api) -> None:
    document = api.get("/openapi.json").json
    operation = document["paths"][PATH]["post"]  # type: ignore[index]
    assert {"200", "401", "403", "404", "422"} <= set(operation["responses"])
    schema = document["components"]["schemas"]["BackloadBody"]  # type: ignore[index]
    assert {"task", "from", "meta_file", "execute"} <= set(schema["properties"])
    assert "`From`" in schema["properties"]["from"]["description"]
