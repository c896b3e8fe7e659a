"""Workflow files, phases, one phase and the schedule, through a real server: the values of
testdata/workflows (and of files made here for findings, batch cron rules, job-qualified
grandchildren and cycles), the errors, and the OpenAPI document."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.client import Api
from tests.api.conftest import Served, serve
from tests.conftest import TESTDATA, write

LOADED = "2026-11-21T12:00:00Z"  # the fixture's clock: the cache loaded its files then

GRAPH = """
# A batch cron phase, a child by job, a grandchild by topic and one by topic:job, a cycle.
[[Phase]]
task = "start"
rule = "cron=30 6 * * *&meta=region:us,eu&offset=-1h"
template = "?day={yyyy}-{mm}-{dd}&region={meta:region}"

[[Phase]]
task = "split:a"
dependsOn = "start"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "split:b"
dependsOn = "start"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "merge"
dependsOn = "split:b"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "tail"
dependsOn = "split"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "hop:1"
dependsOn = "merge"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "hop:2"
dependsOn = "hop"
template = "?day={yyyy}-{mm}-{dd}"
"""


@pytest.fixture
def shaped(tmp_path: Path) -> Iterator[Served]:
    """A server over the findings example, the graph above and a file that does not load."""
    folder = tmp_path / "source"
    write(folder, "graph.toml", GRAPH)
    shutil.copy(TESTDATA / "findings" / "statuses.toml", folder / "findings.toml")
    write(folder, "broken.toml", "[[Phase]\ntask = 'x'\n")
    yield from serve(tmp_path / "server", workflows=folder)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pause(served: Served, workflow: str, phase: str = "", reason: str = "maintenance") -> None:
    with served.store.transaction() as tx:
        tx.set_control(workflow, phase, enabled=False, reason=reason, actor="test")


def tree(children: list[dict]) -> list[object]:
    """A children chain as nested lists, marks in the names (as tests/test_chains.py)."""
    out: list[object] = []
    for child in children:
        mark = " (cycle)" if child["cycle"] else " (truncated)" if child["truncated"] else ""
        out.append(child["task"] + mark)
        if child["children"]:
            out.append(tree(child["children"]))
    return out


# /api/workflows


def test_workflows_lists_each_file_with_its_counts(api: Api, served: Served) -> None:
    items = api.get("/api/workflows").json["workflows"]
    assert [item["file"] for item in items] == [
        "etl.toml",
        "ingest/files.toml",
        "reports/daily.toml",
    ]
    assert items[0] == {
        "file": "etl.toml", "hash": sha256(served.folder / "etl.toml"),
        "loaded_at": LOADED, "error": "", "phases": 4, "errors": 0, "warnings": 0,
        "enabled": True, "reason": "",
    }  # fmt: skip
    assert [item["phases"] for item in items] == [4, 3, 4]


def test_workflows_count_findings_and_show_load_errors(shaped: Served) -> None:
    items = {item["file"]: item for item in shaped.api.get("/api/workflows").json["workflows"]}
    assert set(items) == {"broken.toml", "findings.toml", "graph.toml"}
    findings = items["findings.toml"]
    assert (findings["phases"], findings["errors"], findings["warnings"]) == (9, 6, 3)
    assert (items["graph.toml"]["errors"], items["graph.toml"]["warnings"]) == (0, 0)
    broken = items["broken.toml"]
    assert broken["error"] and broken["hash"] == "" and broken["phases"] == 0
    assert broken["loaded_at"].endswith("Z")


def test_workflows_show_the_whole_file_switch(api: Api, served: Served) -> None:
    pause(served, "etl.toml", reason="bad upstream data")
    pause(served, "reports/daily.toml", "publish")  # a phase switch is not the file's
    items = {item["file"]: item for item in api.get("/api/workflows").json["workflows"]}
    assert (items["etl.toml"]["enabled"], items["etl.toml"]["reason"]) == (
        False,
        "bad upstream data",
    )
    assert (items["reports/daily.toml"]["enabled"], items["reports/daily.toml"]["reason"]) == (
        True,
        "",
    )


# /api/workflows/{file}


def test_one_workflow_with_its_phases(api: Api, served: Served) -> None:
    pause(served, "reports/daily.toml", "publish", reason="report owner away")
    reply = api.get("/api/workflows/reports/daily.toml")
    assert reply.status == 200
    body = reply.json
    assert (body["file"], body["error"], body["enabled"]) == ("reports/daily.toml", "", True)
    assert (
        body["hash"]
        == hashlib.sha256((served.folder / "reports/daily.toml").read_bytes()).hexdigest()
    )
    assert [p["task"] for p in body["phases"]] == [
        "report:hourly", "rollup:regions", "backfill:daily", "publish",
    ]  # fmt: skip
    assert body["phases"][1] == {
        "file": "reports/daily.toml", "task": "rollup:regions", "topic": "rollup", "job": "regions",
        "depends_on": "report:hourly", "rule": "meta=region:us,eu,apac",
        "template": "?region={meta:region}&hour={yyyy}-{mm}-{dd}T{hh}", "retry": 0, "status": "",
        "enabled": None, "reason": None,
    }  # fmt: skip
    publish = body["phases"][3]
    assert (publish["enabled"], publish["reason"]) == (False, "report owner away")


def test_a_job_from_the_rule_is_part_of_the_stored_task(api: Api) -> None:
    phases = api.get("/api/workflows/etl.toml").json["phases"]
    customers = next(p for p in phases if p["rule"] == "job=customers")
    assert (customers["task"], customers["topic"], customers["job"]) == (
        "transform:customers", "transform", "customers",
    )  # fmt: skip


def test_one_workflow_counts_its_findings(shaped: Served) -> None:
    body = shaped.api.get("/api/workflows/findings.toml").json
    assert (len(body["phases"]), body["errors"], body["warnings"]) == (9, 6, 3)
    assert body["phases"][0]["status"] == "invalid phase: rule and dependsOn are blank"


def test_a_file_that_never_loaded_has_no_phases_and_says_why(shaped: Served) -> None:
    body = shaped.api.get("/api/workflows/broken.toml").json
    assert body["phases"] == [] and "broken.toml" in body["error"]


def test_unknown_workflow_is_404(api: Api) -> None:
    reply = api.get("/api/workflows/nope.toml")
    assert reply.status == 404
    assert reply.error() == {"error": "workflow 'nope.toml' not found", "field": "file"}


@pytest.mark.parametrize(
    "path",
    ["/api/workflows/sub/../etl.toml", "/api/workflows/%2E%2E/etc.toml", "/api/workflows/etl.txt",
     "/api/workflows/.hidden.toml", "/api/workflows/etl.toml%00", "/api/workflows/"],
)  # fmt: skip
def test_a_bad_key_is_400_whether_or_not_the_file_exists(
    api: Api, served: Served, path: str
) -> None:
    (served.folder / ".hidden.toml").write_text((served.folder / "etl.toml").read_text())
    reply = api.get(path)
    assert reply.status == 400 and reply.error()["field"] == "file"


# /api/phases


@pytest.mark.parametrize(
    ("query", "tasks"),
    [
        ("status=error", ["orphan", "idle", "badcron", "notquery", "lost", "slow"]),
        ("status=warning", ["both", "stubborn", "typo"]),
        ("status=retry", ["stubborn", "typo", "slow"]),
        ("file=findings.toml&depends_on=badcron", ["both", "stubborn", "typo", "slow"]),
        ("topic=split", ["split:a", "split:b"]),
        ("file=graph.toml&status=ok", ["start", "split:a", "split:b", "merge", "tail", "hop:1",
                                       "hop:2"]),
        ("depends_on=split:b", ["merge"]),
        ("topic=nothing", []),
        ("file=nope.toml", []),
    ],
)  # fmt: skip
def test_phases_filters(shaped: Served, query: str, tasks: list[str]) -> None:
    reply = shaped.api.get(f"/api/phases?{query}")
    assert reply.status == 200
    assert [p["task"] for p in reply.json["phases"]] == tasks


def test_phases_without_filters_lists_every_phase_in_file_order(api: Api, served: Served) -> None:
    pause(served, "etl.toml", "load:warehouse", reason="warehouse upgrade")
    phases = api.get("/api/phases").json["phases"]
    assert [(p["file"], p["task"]) for p in phases][:4] == [
        ("etl.toml", "extract"), ("etl.toml", "transform:orders"),
        ("etl.toml", "transform:customers"), ("etl.toml", "load:warehouse"),
    ]  # fmt: skip
    assert len(phases) == 11
    assert (phases[3]["enabled"], phases[3]["reason"]) == (False, "warehouse upgrade")
    assert phases[0]["enabled"] is None


def test_phases_refuses_a_bad_file_key(api: Api) -> None:
    reply = api.get("/api/phases?file=../etl.toml")
    assert reply.status == 400 and reply.error()["field"] == "file"


# /api/phase


def test_phase_with_its_chain_and_fire_times(api: Api) -> None:
    body = api.get("/api/phase?file=etl.toml&task=extract").json
    assert (body["task"], body["rule"], body["retry"]) == (
        "extract",
        "cron=0 2 * * *&offset=-24h",
        2,
    )
    assert (body["trigger"], body["offset"], body["problem"]) == ("cron=0 2 * * *", "-24h", "")
    assert (body["previous"], body["next"]) == ("2026-11-21T02:00:00Z", "2026-11-22T02:00:00Z")
    assert body["parents"] == []
    assert tree(body["children"]) == [
        "transform:orders", ["load:warehouse"], "transform:customers",
    ]  # fmt: skip


def test_phase_run_by_a_parent_has_parents_and_no_fire_times(api: Api) -> None:
    body = api.get("/api/phase?file=reports/daily.toml&task=rollup:regions").json
    assert [p["task"] for p in body["parents"]] == ["report:hourly"]
    assert body["parents"][0]["rule"] == "cron=0 5 * * * *"
    assert tree(body["children"]) == ["publish"]  # `publish` depends on the topic `rollup`
    assert (body["trigger"], body["previous"], body["next"]) == ("", None, None)


def test_phase_of_a_topic_has_every_phase_of_it_as_parent(shaped: Served) -> None:
    body = shaped.api.get("/api/phase?file=graph.toml&task=tail").json
    assert [p["task"] for p in body["parents"]] == ["split:a", "split:b"]


def test_phase_chain_stops_at_a_cycle(shaped: Served) -> None:
    pause(shaped, "graph.toml", "hop:2", reason="loops")
    body = shaped.api.get("/api/phase?file=graph.toml&task=merge").json
    assert tree(body["children"]) == ["hop:1", ["hop:2", ["hop:2 (cycle)"]]]
    hop = shaped.api.get("/api/phase?file=graph.toml&task=hop:2").json
    assert [p["task"] for p in hop["parents"]] == ["hop:1", "hop:2"]
    assert (hop["enabled"], hop["reason"]) == (False, "loops")
    assert hop["parents"][1]["enabled"] is False


def test_phase_that_will_not_run_says_why(shaped: Served) -> None:
    body = shaped.api.get("/api/phase?file=findings.toml&task=badcron").json
    assert body["problem"].startswith("will not run: no valid rule found: cron=61 * * * *")
    assert body["next"] is None
    assert tree(body["children"]) == ["both", "stubborn", "typo", "slow"]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("file=etl.toml", 422, "task"),
        ("task=extract", 422, "file"),
        ("file=&task=extract", 422, "file"),
        ("file=etl.toml&task=", 422, "task"),
        ("file=nope.toml&task=extract", 404, "file"),
        ("file=etl.toml&task=nope", 404, "task"),
        ("file=etl.toml&task=transform", 404, "task"),  # the stored task is topic:job
        ("file=../etl.toml&task=extract", 400, "file"),
        ("file=etl&task=extract", 400, "file"),
    ],
)
def test_phase_errors_name_the_field(api: Api, query: str, status: int, field: str) -> None:
    reply = api.get(f"/api/phase?{query}")
    assert reply.status == status and reply.error()["field"] == field


# /api/schedule


def test_schedule_of_the_example_workflows(api: Api) -> None:
    body = api.get("/api/schedule").json
    assert body["timezone"] == "UTC" and body["errors"] == {}
    rows = {row["task"]: row for row in body["phases"]}
    assert [(row["file"], row["task"]) for row in body["phases"]] == [
        ("etl.toml", "extract"), ("ingest/files.toml", "ingest:clicks"),
        ("ingest/files.toml", "heartbeat"), ("reports/daily.toml", "report:hourly"),
        ("reports/daily.toml", "backfill:daily"),
    ]  # fmt: skip
    assert tree(rows["extract"]["children"]) == [
        "transform:orders", ["load:warehouse"], "transform:customers",
    ]  # fmt: skip
    assert tree(rows["report:hourly"]["children"]) == ["rollup:regions", ["publish"]]
    assert rows["ingest:clicks"] == {
        "file": "ingest/files.toml", "task": "ingest:clicks", "topic": "ingest", "job": "clicks",
        "trigger": "files=s3://landing/clicks/*/*.json.gz", "offset": "", "batch": "",
        "previous": None, "next": None, "problem": "",
        "children": [{"task": "dedupe:clicks", "children": [], "cycle": False, "truncated": False}],
    }  # fmt: skip
    assert (rows["heartbeat"]["previous"], rows["heartbeat"]["next"]) == (
        "2026-11-21T11:45:00Z", "2026-11-21T12:15:00Z",
    )  # fmt: skip
    assert (rows["report:hourly"]["previous"], rows["report:hourly"]["next"]) == (
        "2026-11-21T11:05:00Z", "2026-11-21T12:05:00Z",
    )  # fmt: skip


def test_schedule_shows_batch_cron_phases(api: Api) -> None:
    """The Go `/info` left these out: their cron entries are not plain cron jobs."""
    rows = {row["task"]: row for row in api.get("/api/schedule").json["phases"]}
    backfill = rows["backfill:daily"]
    assert (backfill["trigger"], backfill["batch"]) == ("cron=@daily", "for=-72h&by=day")
    assert (backfill["previous"], backfill["next"]) == (
        "2026-11-21T00:00:00Z",
        "2026-11-22T00:00:00Z",
    )


def test_schedule_follows_job_qualified_grandchildren_and_stops_at_cycles(shaped: Served) -> None:
    body = shaped.api.get("/api/schedule").json
    rows = {row["task"]: row for row in body["phases"]}
    start = rows["start"]
    assert (start["batch"], start["offset"]) == ("meta=region:us,eu", "-1h")
    assert (start["previous"], start["next"]) == ("2026-11-21T06:30:00Z", "2026-11-22T06:30:00Z")
    assert tree(start["children"]) == [
        "split:a", ["tail"],
        "split:b", ["merge", ["hop:1", ["hop:2", ["hop:2 (cycle)"]]], "tail"],
    ]  # fmt: skip
    assert rows["badcron"]["problem"].startswith("will not run: no valid rule found")
    assert rows["badcron"]["next"] is None
    assert set(rows) == {"start", "badcron"}  # not `both`: it runs from its parent only
    assert "broken.toml" in body["errors"] and "not loaded" in body["errors"]["broken.toml"]


# every route: never a 5xx, and described by the OpenAPI document


@pytest.mark.parametrize(
    "path",
    [
        "/api/phases?status=%00", "/api/phases?file=%00", "/api/phases?topic=%FF%FE",
        "/api/phases?depends_on=" + "x" * 5000, "/api/phases?file=" + "a/" * 600 + "x.toml",
        "/api/phase?file=etl.toml&task=%00", "/api/phase?file=C:x.toml&task=x",
        "/api/phase?file=etl.toml&task=extract&task=other", "/api/workflows/" + "%FF" * 10,
        "/api/schedule?unknown=1", "/api/workflows?file=etl.toml",
    ],
)  # fmt: skip
def test_odd_input_is_never_a_server_error(api: Api, path: str) -> None:
    assert api.get(path).status < 500


def test_openapi_describes_every_route(api: Api) -> None:
    document = api.get("/openapi.json").json
    paths, schemas = document["paths"], document["components"]["schemas"]
    for path, model in [
        ("/api/workflows", "WorkflowList"), ("/api/workflows/{file}", "WorkflowOut"),
        ("/api/phases", "PhaseList"), ("/api/phase", "PhaseOut"), ("/api/schedule", "ScheduleOut"),
    ]:  # fmt: skip
        get = paths[path]["get"]
        ok = get["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}
        assert {"400", "404", "422"} <= set(get["responses"])
    assert schemas["Child"]["properties"]["children"]["items"] == {
        "$ref": "#/components/schemas/Child"
    }
    assert {"previous", "next", "batch", "children"} <= set(schemas["ScheduleItem"]["properties"])
