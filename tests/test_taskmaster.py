"""The taskmaster end to end: cron parent, two children, a grandchild with `require`, a retry and
a failure, through the real file bus and the nop worker, on an injected clock (no sleeps)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cache import RefreshError, SQLiteCache
from flowlord.bus import FileBus
from flowlord.state import SQLiteTaskStore
from flowlord.taskmaster import Taskmaster
from flowlord.worker import NopWorker
from tests.conftest import write
from workflow import Task
from workflow.policy import jitter_fraction
from workflow.schedule import CronTable

ETL = """
[[Phase]]
task = "extract"
rule = "cron=0 2 * * *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "transform:orders"
dependsOn = "extract"
rule = "retry_delay=5m"
retry = 1
template = "?day={yyyy}-{mm}-{dd}&t=orders"

[[Phase]]
task = "transform:customers"
dependsOn = "extract"
template = "?day={yyyy}-{mm}-{dd}&t=customers"

[[Phase]]
task = "load"
dependsOn = "transform:orders"
rule = "require=transform:customers"
template = "?day={yyyy}-{mm}-{dd}"
"""


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class System:
    """A taskmaster and a nop worker sharing a file bus; `settle()` runs both until idle."""

    def __init__(self, tmp_path: Path, workflow: str, *, fail_first: dict[str, int]) -> None:
        self.folder = tmp_path / "wf"
        write(self.folder, "etl.toml", workflow)
        self.clock = Clock(datetime(2026, 11, 21, 1, 59, tzinfo=UTC))
        self.cache = SQLiteCache(self.folder, tmp_path / "flowlord.db", now=self.clock)
        self.cache.refresh()
        self.bus_dir = tmp_path / "bus"
        bus = FileBus(self.bus_dir)
        ids = (f"id-{n}" for n in range(1000))
        self.store = SQLiteTaskStore(tmp_path / "flowlord.db", now=self.clock)
        self.taskmaster = Taskmaster(
            self.cache, self.store, bus.producer(),
            lambda: bus.consumer(["done", "files"], "taskmaster"),
            table=CronTable(UTC), now=self.clock, new_id=lambda: next(ids), holder="test",
        )  # fmt: skip
        topics = ["extract", "transform", "load"]
        self.worker = NopWorker(
            bus.consumer(topics, "worker"), bus.producer(), now=self.clock, fail_first=fail_first
        )
        assert self.taskmaster.lead()

    def settle(self, at: datetime) -> None:
        self.clock.now = at
        for _ in range(200):
            busy = self.taskmaster.step(timeout=0.01)
            busy = self.worker.step(timeout=0.01) or busy
            if not busy:
                return
        raise AssertionError("the system did not settle")

    def topic(self, name: str) -> list[Task]:
        path = self.bus_dir / f"{name}.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [Task.from_json(line) for line in lines]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    made = System(tmp_path, ETL, fail_first={"transform": 1, "load": 1})
    yield made
    made.cache.close()


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 11, 21, hour, minute, tzinfo=UTC)


def test_three_levels_with_a_retry_and_a_failure(system: System) -> None:
    system.settle(at(1, 59))
    assert system.topic("extract") == []

    system.settle(at(2, 0))
    [extract] = system.topic("extract")
    assert (extract.id, extract.info) == ("id-0", "?day=2026-11-21")
    assert extract.meta_values() == {"workflow": "etl.toml", "cron": "2026-11-21T02:00:00Z"}
    transforms = system.topic("transform")
    assert [(t.job, t.info, t.id) for t in transforms] == [
        ("orders", "?day=2026-11-21&t=orders", "id-0"),
        ("customers", "?day=2026-11-21&t=customers", "id-0"),
    ]
    assert system.topic("load") == []  # orders failed: load waits for its retry

    system.settle(at(2, 4))
    assert len(system.topic("transform")) == 2  # the retry waits for retry_delay

    system.settle(at(2, 7))  # 5 minutes and up to 40 % jitter
    retry = system.topic("transform")[2]
    assert (retry.job, retry.id, retry.meta_value("retry")) == ("orders", "id-0", "1")
    [load] = system.topic("load")
    assert (load.info, load.id) == ("?day=2026-11-21", "id-0")
    assert load.meta_values() == {"workflow": "etl.toml", "cron": "2026-11-21T02:00:00Z"}

    [failed] = system.topic("retry-failed")
    assert (failed.type, failed.result, failed.id) == ("load", "error", "id-0")
    done = [(t.type, t.job, t.result) for t in system.topic("done")]
    assert done == [
        ("extract", "", "complete"), ("transform", "orders", "error"),
        ("transform", "customers", "complete"), ("transform", "orders", "complete"),
        ("load", "", "error"),
    ]  # fmt: skip
    counters = system.taskmaster.counters
    assert (counters.sent, counters.retries, counters.failed, counters.alerts) == (5, 1, 1, 1)
    assert (counters.bad_messages, counters.phase_errors) == (0, 0)


def test_fire_times_of_a_phase(system: System) -> None:
    assert system.taskmaster.fire_times("etl.toml", "extract") == (
        datetime(2026, 11, 20, 2, 0, tzinfo=UTC), at(2, 0),
    )  # fmt: skip
    assert system.taskmaster.fire_times("etl.toml", "load") is None


def test_the_next_day_fires_again(system: System) -> None:
    system.settle(at(2, 0))
    system.settle(at(2, 7))
    system.settle(datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
    assert [t.id for t in system.topic("extract")] == ["id-0", "id-1"]


def test_a_changed_file_is_rescheduled(system: System) -> None:
    write(system.folder, "etl.toml", ETL.replace("cron=0 2 * * *", "cron=30 1 * * *"))
    system.taskmaster.on_change(system.cache.refresh())
    system.settle(at(2, 0))
    assert system.topic("extract") == []
    system.settle(datetime(2026, 11, 22, 1, 30, tzinfo=UTC))
    assert len(system.topic("extract")) == 1
    (system.folder / "etl.toml").unlink()
    system.taskmaster.on_change(system.cache.refresh())
    system.settle(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))
    assert len(system.topic("extract")) == 1


def test_a_broken_save_keeps_the_old_schedule(system: System) -> None:
    write(system.folder, "etl.toml", "[[Phase]\ntask = ")
    with pytest.raises(RefreshError) as raised:
        system.cache.refresh()
    system.taskmaster.on_change(raised.value.changed)
    system.settle(at(2, 0))
    assert len(system.topic("extract")) == 1


def test_meta_file_expands_a_child(tmp_path: Path) -> None:
    workflow = ETL.replace(
        'rule = "require=transform:customers"\ntemplate = "?day={yyyy}-{mm}-{dd}"',
        'rule = "meta-file=regions.csv"\ntemplate = "?day={yyyy}-{mm}-{dd}&r={meta:region}"',
    )
    made = System(tmp_path, workflow, fail_first={})
    write(made.folder, "regions.csv", "region\nus\neu\n")
    made.settle(at(2, 0))
    assert [t.info for t in made.topic("load")] == ["?day=2026-11-21&r=us", "?day=2026-11-21&r=eu"]
    made.cache.close()


def test_a_bad_meta_file_fails_that_phase_only(tmp_path: Path) -> None:
    workflow = ETL.replace('rule = "require=transform:customers"', 'rule = "meta-file=../x.csv"')
    made = System(tmp_path, workflow, fail_first={})
    made.settle(at(2, 0))
    assert made.topic("load") == []
    assert len(made.topic("transform")) == 2
    assert made.taskmaster.counters.phase_errors == 1
    made.cache.close()


def test_a_done_message_delivered_twice_dispatches_children_once(system: System) -> None:
    system.settle(at(2, 0))
    extract_done = next(line for line in (system.bus_dir / "done.jsonl").read_text().splitlines())
    with open(system.bus_dir / "done.jsonl", "a") as handle:
        handle.write(extract_done + "\n")
    system.settle(at(2, 1))
    assert len(system.topic("transform")) == 2


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "invalid task JSON"),
        ('{"id": "x"}', "'type'"),
        ('{"type": "ghost", "meta": "workflow=etl.toml", "result": "complete"}', "no phase"),
        ('{"type": "extract", "meta": "workflow=etl.toml", "result": "complete", '
         '"created": "yesterday"}', "created"),
        ('{"type": "extract", "meta": "workflow=etl.toml", "result": "complete", '
         '"info": "?day=2026-13-45"}', "2026-13-45"),
    ],
)  # fmt: skip
def test_bad_done_messages_are_counted_and_skipped(
    system: System, body: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with open(system.bus_dir / "done.jsonl", "a") as handle:
        handle.write(body + "\n")
    with caplog.at_level(logging.ERROR, logger="flowlord.taskmaster"):
        system.settle(at(1, 59))
    assert system.taskmaster.counters.bad_messages == 1
    assert why in caplog.text
    system.settle(at(2, 0))  # and the consumer goes on
    assert len(system.topic("transform")) == 2


def test_files_rule_starts_a_phase(tmp_path: Path) -> None:
    workflow = """
    [[Phase]]
    task = "ingest:clicks"
    rule = "files=s3://landing/clicks/*/*.json.gz"
    template = "{meta:file}?day={yyyy}-{mm}-{dd}&name={meta:filename}"
    """
    made = System(tmp_path, workflow, fail_first={})
    with open(made.bus_dir / "files.jsonl", "a") as handle:
        for path in ("s3://landing/clicks/2026/11/20/part-1.json.gz",
                     "s3://landing/clicks/20261120/part-2.json.gz",
                     "s3://landing/other/20261120/part-3.json.gz"):  # fmt: skip
            handle.write(json.dumps({"path": path, "size": 10, "modified": "x"}) + "\n")
        handle.write("nope\n")
    made.settle(at(3, 0))
    tasks = made.topic("ingest")
    assert [t.info for t in tasks] == [
        "s3://landing/clicks/20261120/part-2.json.gz?day=2026-11-20&name=part-2.json.gz"
    ]
    assert tasks[0].meta_values()["file"] == "s3://landing/clicks/20261120/part-2.json.gz"
    assert made.taskmaster.counters.bad_messages == 1
    made.cache.close()


def test_a_bad_template_fails_that_phase_only(tmp_path: Path) -> None:
    workflow = ETL.replace('template = "?day={yyyy}-{mm}-{dd}&t=customers"', 'template = "{oops}"')
    made = System(tmp_path, workflow, fail_first={})
    made.settle(at(2, 0))
    assert [t.job for t in made.topic("transform")] == ["orders"]
    assert made.taskmaster.counters.phase_errors == 1
    made.cache.close()


def test_for_range_over_the_cap_is_an_error_for_that_phase(tmp_path: Path) -> None:
    workflow = ETL.replace('rule = "require=transform:customers"', 'rule = "for=-20000h&by=hour"')
    made = System(tmp_path, workflow, fail_first={})
    made.settle(at(2, 0))
    assert made.topic("load") == []
    assert made.taskmaster.counters.phase_errors == 1
    made.cache.close()


def test_a_retry_is_sent_at_the_first_turn_at_or_after_its_due_time(system: System) -> None:
    """Retries are `waiting` records, looked for every turn: nothing sleeps until them."""
    system.settle(at(2, 0))
    jitter = jitter_fraction("id-0", "transform:orders", 1)
    due = at(2, 0) + timedelta(minutes=5) * (1 + 0.4 * jitter)
    system.settle(due - timedelta(milliseconds=1))
    assert len(system.topic("transform")) == 2
    system.settle(due)
    assert [t.meta_value("retry") for t in system.topic("transform")] == ["", "", "1"]
