"""GET /metrics through a real server, parsed as Prometheus parses it: every family of DESIGN
§6 is there with its type, and the values follow what really happened: records in the store,
a real taskmaster resolving done messages, refreshes, pauses, and who leads (a standby too)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowlord import controls
from flowlord.bus import MemoryBus
from flowlord.state import NewRecord
from flowlord.taskmaster import Taskmaster
from tests.api.client import Api, free_port
from tests.api.conftest import Served, serve
from tests.conftest import TESTDATA, write
from tests.processes import flowlord_run, stop, wait_until
from workflow import Task
from workflow.schedule import CronTable
from workflow.state import Origin, State

FAMILIES = {
    "flowlord_tasks": "gauge",
    "flowlord_sent": "counter",
    "flowlord_done": "counter",
    "flowlord_retries": "counter",
    "flowlord_alerts": "counter",
    "flowlord_bad_messages": "counter",
    "flowlord_reload_seconds": "histogram",
    "flowlord_refresh_errors": "counter",
    "flowlord_workflow_files": "gauge",
    "flowlord_phase_duration_seconds": "summary",
    "flowlord_done_to_child_seconds": "histogram",
    "flowlord_leader": "gauge",
}
"""The families by the name the parser gives them (a counter's without `_total`)."""

CHAIN = """
[[Phase]]
task = "parent"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "child"
dependsOn = "parent"
retry = 1
template = "?day={yyyy}-{mm}-{dd}"
"""


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> Samples:
    """Every sample, by name and labels; the families are checked to be exactly DESIGN's."""
    reply = api.get("/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = list(text_string_to_metric_families(reply.text))
    assert {family.name: family.type for family in families} == FAMILIES
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_every_family_is_served_with_every_label_value_known_in_advance(api: Api) -> None:
    samples = scrape(api)
    for state in State:
        assert value(samples, "flowlord_tasks", state=state.value) == 0
    for result in ("complete", "error", "alert", "warn"):
        assert value(samples, "flowlord_done_total", result=result) == 0
    for kind in ("failed", "alert", "stuck", "phase_error", "bad_message"):
        assert value(samples, "flowlord_alerts_total", kind=kind) == 0
    assert value(samples, "flowlord_workflow_files", state="ok") == 3
    assert value(samples, "flowlord_leader") == 1


def test_task_counts_follow_the_records_in_the_store(served: Served) -> None:
    with served.store.transaction() as tx:
        recs = [
            record.rec
            for record in tx.add([_record(n) for n in range(3)], actor="test", reason="arranged")
            if record is not None
        ]
        tx.move(recs[0], State.SENT, actor="test", reason="sent")
        tx.move(recs[1], State.CANCELLED, actor="test", reason="not wanted")
    samples = scrape(served.api)
    counts = {state: value(samples, "flowlord_tasks", state=state) for state in
              ("queued", "sent", "cancelled", "complete")}  # fmt: skip
    assert counts == {"queued": 1, "sent": 1, "cancelled": 1, "complete": 0}


def test_totals_follow_a_real_taskmaster_resolving_done_messages(served: Served) -> None:
    write(served.folder, "chain.toml", CHAIN)
    served.service.refresh(["chain.toml"])
    bus = MemoryBus()
    ids = (f"id-{n}" for n in range(100))
    taskmaster = Taskmaster(
        served.cache, served.store, bus.producer(), lambda: bus.consumer(["done", "files"], "tm"),
        table=CronTable(UTC), now=served.clock, new_id=lambda: next(ids),
        holder="test", metrics=served.service.metrics,
    )  # fmt: skip
    served.service.follow(lambda _: None, lambda _: None, taskmaster.counters, lambda: True)
    assert taskmaster.lead()
    done = bus.producer()
    meta = {"type": "parent", "info": "?day=2026-11-21", "meta": "workflow=chain.toml"}
    done.send("done", json.dumps({**meta, "id": "run-1", "result": "complete",
                                  "started": "2026-11-21T11:58:00Z",
                                  "ended": "2026-11-21T11:59:30Z"}))  # fmt: skip
    done.send("done", json.dumps({**meta, "id": "run-2", "result": "alert", "msg": "no data"}))
    done.send("done", "not json")
    _settle(taskmaster)
    [child] = _bodies(bus, "child")
    done.send("done", json.dumps({**child, "result": "error", "msg": "try again"}))
    _settle(taskmaster)

    samples = scrape(served.api)
    assert value(samples, "flowlord_sent_total", topic="child") == 1
    for result, count in (("complete", 1), ("alert", 1), ("error", 1), ("warn", 0)):
        assert value(samples, "flowlord_done_total", result=result) == count, result
    assert value(samples, "flowlord_retries_total") == 1
    assert value(samples, "flowlord_bad_messages_total") == 1
    for kind, count in (("alert", 1), ("bad_message", 1), ("failed", 0), ("phase_error", 0)):
        assert value(samples, "flowlord_alerts_total", kind=kind) == count, kind
    parent = {"workflow": "chain.toml", "phase": "parent"}
    assert value(samples, "flowlord_phase_duration_seconds_count", **parent) == 1
    assert value(samples, "flowlord_phase_duration_seconds_sum", **parent) == 90
    assert value(samples, "flowlord_done_to_child_seconds_count") == 1
    assert value(samples, "flowlord_done_to_child_seconds_bucket", le="+Inf") == 1
    assert taskmaster.counters.sent == sum(taskmaster.counters.sent_topics.values())


def test_refreshes_are_timed_and_failed_files_and_pauses_counted(served: Served) -> None:
    before = scrape(served.api)
    assert value(before, "flowlord_reload_seconds_count") == 0
    served.service.refresh()
    (served.folder / "broken.toml").write_text("[[Phase]\n")
    assert served.service.refresh(["broken.toml"]).errors
    with controls.known_phases(served.db) as phases_of:
        controls.pause(served.store, phases_of, "etl.toml", reason="maintenance", actor="test")
    samples = scrape(served.api)
    assert value(samples, "flowlord_reload_seconds_count") == 2
    assert value(samples, "flowlord_reload_seconds_bucket", le="+Inf") == 2
    assert value(samples, "flowlord_refresh_errors_total") == 1
    files = {state: value(samples, "flowlord_workflow_files", state=state) for state in
             ("ok", "error", "paused")}  # fmt: skip
    assert files == {"ok": 2, "error": 1, "paused": 1}


def test_a_standby_says_it_does_not_lead(served: Served) -> None:
    served.service.liveness.leading = lambda: False
    assert value(scrape(served.api), "flowlord_leader") == 0


def test_each_app_has_its_own_registry(served: Served, tmp_path: Path) -> None:
    served.service.context.counters.add(retries=5)
    other = serve(tmp_path / "other")
    second = next(other)
    try:
        assert value(scrape(second.api), "flowlord_retries_total") == 0
    finally:
        next(other, None)
    assert value(scrape(served.api), "flowlord_retries_total") == 5
    assert prometheus_client.REGISTRY.get_sample_value("flowlord_retries_total") is None


def test_openmetrics_is_served_when_asked(api: Api) -> None:
    reply = api.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert reply.headers["content-type"].startswith("application/openmetrics-text")
    assert reply.text.endswith("# EOF\n") and "flowlord_leader 1.0" in reply.text


@pytest.mark.slow
def test_a_real_leader_and_standby_serve_metrics(tmp_path: Path) -> None:
    shutil.copytree(TESTDATA / "workflows", tmp_path / "wf")
    leader_api, standby_api = (Api(f"http://127.0.0.1:{free_port()}") for _ in range(2))
    with flowlord_run(tmp_path, "leader.log", "--port", str(leader_api.port)) as leader:
        wait_until(lambda: _role(leader_api) == "leader", "the leader's API", leader)
        samples = scrape(leader_api)
        assert value(samples, "flowlord_leader") == 1
        assert value(samples, "flowlord_reload_seconds_count") >= 1  # the start-up load, and the
        # watcher's first look may have followed
        assert value(samples, "flowlord_workflow_files", state="ok") == 3
        with flowlord_run(tmp_path, "standby.log", "--port", str(standby_api.port)) as standby:
            wait_until(lambda: _role(standby_api) == "standby", "the standby's API", standby)
            assert value(scrape(standby_api), "flowlord_leader") == 0
            assert stop(standby) == 0
        assert stop(leader) == 0


def _role(api: Api) -> str | None:
    try:
        reply = api.get("/readyz", timeout=2)
    except OSError:  # not listening yet
        return None
    return reply.json["role"] if reply.status == 200 else None  # type: ignore[index]


def _record(n: int) -> NewRecord:
    return NewRecord(
        task=Task(type="extract", info=f"?n={n}", id=f"run-{n}"), workflow="etl.toml",
        phase="extract", origin=Origin.MANUAL, origin_key=f"test|{n}", state=State.QUEUED,
    )  # fmt: skip


def _bodies(bus: MemoryBus, topic: str) -> list[dict[str, str]]:
    consumer = bus.consumer([topic], "test")
    found = []
    while (message := consumer.receive(0)) is not None:
        found.append(json.loads(message.body))
    return found


def _settle(taskmaster: Taskmaster) -> None:
    for _ in range(50):
        if not taskmaster.step(timeout=0):
            return
    raise AssertionError("the taskmaster did not settle")
