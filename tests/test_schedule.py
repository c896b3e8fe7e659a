"""Cron scheduling: fire times (DST days as tables of fixed instants), the heap, cron tasks."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflow import PhaseRecord, parse_workflow
from workflow.cron import parse_cron
from workflow.schedule import CronTable, Firing, cron_jobs, cron_tasks, next_fire, previous_fire

NY = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("expr", "zone", "start", "expected"),
    [
        ("0 5 * * *", UTC, "2026-11-21T12:00:00+00:00",
         ["2026-11-22T05:00:00+00:00", "2026-11-23T05:00:00+00:00"]),
        ("30 0 * * * *", UTC, "2026-11-21T12:00:00+00:00",
         ["2026-11-21T12:00:30+00:00", "2026-11-21T13:00:30+00:00"]),
        ("@every 15m", UTC, "2026-11-21T12:07:00+00:00",
         ["2026-11-21T12:15:00+00:00", "2026-11-21T12:30:00+00:00"]),
        ("@hourly", UTC, "2026-11-21T12:00:00+00:00",
         ["2026-11-21T13:00:00+00:00", "2026-11-21T14:00:00+00:00"]),
        # spring forward, 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist
        ("30 2 * * *", NY, "2026-03-07T12:00:00-05:00",
         ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]),
        ("0 * * * *", NY, "2026-03-08T00:30:00-05:00",
         ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]),
        # fall back, 2026-11-01 02:00 EDT -> 01:00 EST: 01:00-01:59 happens twice
        ("30 1 * * *", NY, "2026-10-31T12:00:00-04:00",
         ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]),
        ("0 * * * *", NY, "2026-11-01T00:30:00-04:00",
         ["2026-11-01T01:00:00-04:00", "2026-11-01T02:00:00-05:00", "2026-11-01T03:00:00-05:00"]),
        ("0 9 * * *", NY, "2026-11-21T12:00:00+00:00", ["2026-11-21T09:00:00-05:00"]),
    ],
)  # fmt: skip
def test_next_fire_times(expr: str, zone: ZoneInfo, start: str, expected: list[str]) -> None:
    schedule = parse_cron(expr)
    fired, when = [], at(start)
    for _ in expected:
        when = next_fire(schedule, when, zone)
        fired.append(when)
    assert [f.astimezone(UTC) for f in fired] == [at(e).astimezone(UTC) for e in expected]
    assert [f.utcoffset() for f in fired] == [at(e).utcoffset() for e in expected]


@pytest.mark.parametrize(
    ("expr", "zone", "now", "previous"),
    [
        ("0 5 * * *", UTC, "2026-11-21T12:00:00+00:00", "2026-11-21T05:00:00+00:00"),
        ("0 * * * *", NY, "2026-11-01T02:30:00-05:00", "2026-11-01T02:00:00-05:00"),
        ("0 * * * *", NY, "2026-11-01T01:30:00-05:00", "2026-11-01T01:00:00-04:00"),
    ],
)
def test_previous_fire(expr: str, zone: ZoneInfo, now: str, previous: str) -> None:
    found = previous_fire(parse_cron(expr), at(now), zone)
    assert (found.astimezone(UTC), found.utcoffset()) == (
        at(previous).astimezone(UTC),
        at(previous).utcoffset(),
    )


def phases(text: str, path: str = "w.toml") -> tuple[PhaseRecord, ...]:
    return parse_workflow(text.encode(), path).phases


WORKFLOW = """
[[Phase]]
task = "extract:daily"
rule = "cron=0 2 * * *&offset=-24h"
template = "s3://raw/{yyyy}/{mm}/{dd}/?ts={ts}&w={meta:workflow}"

[[Phase]]
task = "tick"
rule = "cron=*/30 * * * *"

[[Phase]]
task = "child"
dependsOn = "tick"
rule = "cron=0 * * * *"

[[Phase]]
task = "late"
rule = "cron=@hourly&offset=soon"
"""


def test_cron_jobs_skip_children_and_phases_with_error_statuses() -> None:
    jobs, problems = cron_jobs(phases(WORKFLOW))
    assert [job.phase.task for job in jobs] == ["extract:daily", "tick"]
    assert jobs[0].offset == timedelta(hours=-24)
    assert phases(WORKFLOW)[3].status == "invalid duration: offset=soon"
    assert problems == {}


def test_cron_jobs_report_a_bad_offset_behind_a_stale_status() -> None:
    """A status stored by an older validator may say nothing: the rule is still checked."""
    late = replace(phases(WORKFLOW)[3], status="")
    jobs, problems = cron_jobs([late])
    assert jobs == []
    assert problems == {"late": 'w.toml: late: invalid duration "soon"'}


def test_cron_task_renders_at_fire_time_plus_offset() -> None:
    jobs, _ = cron_jobs(phases(WORKFLOW))
    firing = Firing(job=jobs[0], at=at("2026-11-21T02:00:00+00:00"))
    [task] = cron_tasks(firing, new_id=lambda: "id-1", created=at("2026-11-21T02:00:01+00:00"))
    assert (task.type, task.job, task.id) == ("extract", "daily", "id-1")
    assert task.info == "s3://raw/2026/11/20/?ts=20261120T020000&w=w.toml"
    assert task.meta_values() == {
        "workflow": "w.toml", "cron": "2026-11-21T02:00:00Z", "job": "daily",
    }  # fmt: skip
    assert task.created == "2026-11-21T02:00:01Z"


def test_table_fires_due_jobs_in_time_order() -> None:
    table = CronTable()
    jobs, _ = cron_jobs(phases(WORKFLOW))
    table.set_file("w.toml", jobs, at("2026-11-21T01:10:00+00:00"))
    assert len(table) == 2
    assert table.next_wakeup() == at("2026-11-21T01:30:00+00:00")
    assert table.due(at("2026-11-21T01:29:59+00:00")) == []
    fired = table.due(at("2026-11-21T01:30:00+00:00"))
    assert [(f.job.phase.task, f.at) for f in fired] == [("tick", at("2026-11-21T01:30:00+00:00"))]
    fired = table.due(at("2026-11-21T02:00:00.5+00:00"))
    assert [(f.job.phase.task, f.at) for f in fired] == [
        ("extract:daily", at("2026-11-21T02:00:00+00:00")),
        ("tick", at("2026-11-21T02:00:00+00:00")),
    ]
    assert table.next_wakeup() == at("2026-11-21T02:30:00+00:00")


def test_a_paused_process_fires_once_not_once_per_missed_interval() -> None:
    table = CronTable()
    jobs, _ = cron_jobs(phases(WORKFLOW))
    table.set_file("w.toml", jobs, at("2026-11-21T01:10:00+00:00"))
    fired = table.due(at("2026-11-21T09:05:00+00:00"))
    assert sorted((f.job.phase.task, f.at.hour, f.at.minute) for f in fired) == [
        ("extract:daily", 2, 0), ("tick", 9, 0),
    ]  # fmt: skip
    assert table.next_wakeup() == at("2026-11-21T09:30:00+00:00")


def test_replacing_a_file_stops_removed_jobs_and_starts_new_ones() -> None:
    table = CronTable()
    jobs, _ = cron_jobs(phases(WORKFLOW))
    table.set_file("w.toml", jobs, at("2026-11-21T01:10:00+00:00"))
    table.set_file(
        "other.toml", cron_jobs(phases(WORKFLOW, "other.toml"))[0], at("2026-11-21T01:10:00+00:00")
    )
    changed = WORKFLOW.replace("cron=*/30 * * * *", "cron=45 * * * *").replace("extract:daily", "x")
    new_jobs, _ = cron_jobs(phases(changed))
    table.set_file("w.toml", new_jobs, at("2026-11-21T01:20:00+00:00"))
    fired = [f for minute in (30, 45) for f in table.due(at(f"2026-11-21T01:{minute}:00+00:00"))]
    fired += table.due(at("2026-11-21T02:00:00+00:00"))
    assert [(f.job.phase.file_path, f.job.phase.task, f.at.minute) for f in fired] == [
        ("other.toml", "tick", 30), ("w.toml", "tick", 45),
        ("other.toml", "extract:daily", 0), ("other.toml", "tick", 0), ("w.toml", "x", 0),
    ]  # fmt: skip
    table.remove_file("other.toml")
    assert len(table) == 2
    assert [f.job.phase.file_path for f in table.due(at("2026-11-22T03:00:00+00:00"))] == [
        "w.toml", "w.toml",
    ]  # fmt: skip


def test_table_times_for_display() -> None:
    table = CronTable(NY)
    jobs, _ = cron_jobs(phases(WORKFLOW))
    table.set_file("w.toml", jobs, at("2026-11-21T12:00:00+00:00"))
    assert table.times("w.toml", "extract:daily", at("2026-11-21T12:00:00+00:00")) == (
        at("2026-11-21T02:00:00-05:00"), at("2026-11-22T02:00:00-05:00"),
    )  # fmt: skip
    assert table.times("w.toml", "child", at("2026-11-21T12:00:00+00:00")) is None
