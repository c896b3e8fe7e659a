"""Backload plans (pure): a request and a phase in, the tasks and Go's status notes out."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

import pytest

from workflow.backload import BackloadError, Plan, Request, plan
from workflow.batch import BatchError, step_count, steps
from workflow.phase import Phase, PhaseRecord
from workflow.query import parse_query

NOW = datetime(2026, 11, 21, 13, 45, 10, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
ETL = "etl.toml"
EXTRACT = PhaseRecord(
    task="extract", rule="cron=0 2 * * *", template="s3://raw/{yyyy}/{mm}/{dd}/", file_path=ETL
)
HOURLY = PhaseRecord(
    task="report:hourly", rule="cron=0 5 * * * *", template="?hour={yyyy}-{mm}-{dd}T{hh}",
    file_path=ETL,
)  # fmt: skip
REGIONS = PhaseRecord(
    task="rollup:regions", depends_on="report:hourly", rule="meta=region:us,eu",
    template="?region={meta:region}&day={yyyy}-{mm}-{dd}", file_path=ETL,
)  # fmt: skip
FROM_FILE = PhaseRecord(
    task="load", rule="cron=@daily&meta-file=regions.csv",
    template="?r={meta:region}&d={yyyy}{mm}{dd}", file_path=ETL,
)  # fmt: skip
ROWS = {"regions.csv": [{"region": "us"}, {"region": "apac"}]}


def read_rows(workflow: str, name: str) -> list[dict[str, str]]:
    """The meta-file reader a plan is given: known names, else the error the real one raises."""
    if name not in ROWS:
        raise BatchError("meta-file", f"meta-file={name}: outside the workflow folder")
    return ROWS[name]


def ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def make(
    phase: Phase = EXTRACT, *, zone: tzinfo = UTC, max_tasks: int = 1000, **request: object
) -> Plan:
    return plan(
        Request(**{"task": phase.task, **request}),  # type: ignore[arg-type]
        workflow=ETL if not phase.is_empty() else "", phase=phase, now=NOW, zone=zone,
        max_tasks=max_tasks, meta_rows=read_rows, new_id=ids(),
    )  # fmt: skip


def infos(p: Plan) -> list[str]:
    return [task.info for task in p.tasks]


def crons(p: Plan) -> list[str]:
    return [parse_query(task.meta)["cron"] for task in p.tasks]


DEFAULT_NOTES = ("phase found in etl.toml", "using default day iterator")
CASES = [
    # Go's defaults: no time is today; by is day; a missing end equals the other one
    ({}, ["s3://raw/2026/11/21/"], ("no time provided using today", *DEFAULT_NOTES)),
    ({"from_": "2026-01-05"}, ["s3://raw/2026/01/05/"], ("to value not set", *DEFAULT_NOTES)),
    ({"to": "2026-01-05"}, ["s3://raw/2026/01/05/"], ("from value not set", *DEFAULT_NOTES)),
    ({"at": "2026-01-05T07"}, ["s3://raw/2026/01/05/"], DEFAULT_NOTES),
    (
        {"from_": "2026-01-30", "to": "2026-02-01"},
        ["s3://raw/2026/01/30/", "s3://raw/2026/01/31/", "s3://raw/2026/02/01/"],
        DEFAULT_NOTES,
    ),
    (  # steps keep the time of day of `from` (as Go's); RFC 3339 is moved into the zone
        {"from_": "2026-02-27T23:00:00-02:00", "to": "2026-03-02T00:59:59Z", "by": "DAY"},
        ["s3://raw/2026/02/28/", "s3://raw/2026/03/01/"],
        ("phase found in etl.toml",),
    ),
    (  # by month over a year end, on the day of the month of `from`, while not after `to`
        {"from_": "2025-11-15", "to": "2026-02-14", "by": "month"},
        ["s3://raw/2025/11/15/", "s3://raw/2025/12/15/", "s3://raw/2026/01/15/"],
        ("phase found in etl.toml",),
    ),
    (  # Go's "monthly"; the 31st is each month's last day (Go's time.AddDate skips February)
        {"from_": "2024-01-31", "to": "2024-04-30", "by": "monthly"},
        [
            "s3://raw/2024/01/31/",
            "s3://raw/2024/02/29/",
            "s3://raw/2024/03/31/",
            "s3://raw/2024/04/30/",
        ],
        ("phase found in etl.toml",),
    ),
]


@pytest.mark.parametrize(("request_", "expected", "notes"), CASES)
def test_times_and_defaults(request_: dict[str, str], expected: list[str], notes: tuple) -> None:
    made = make(**request_)
    assert infos(made) == expected
    assert made.notes == notes
    assert made.status == ", ".join(notes)


def test_by_hour_steps_over_midnight_and_a_year_end() -> None:
    made = make(HOURLY, from_="2026-12-31T22", to="2027-01-01T01", by="hourly")
    assert infos(made) == [f"?hour={h}" for h in ("2026-12-31T22", "2026-12-31T23",
                                                  "2027-01-01T00", "2027-01-01T01")]  # fmt: skip
    late = make(HOURLY, from_="2026-12-31T22:30:00Z", to="2027-01-01T01", by="hour")
    assert crons(late) == ["2026-12-31T22:30:00Z", "2026-12-31T23:30:00Z",
                           "2027-01-01T00:30:00Z"]  # fmt: skip


def test_each_task_is_a_task_of_the_phase_with_its_meta() -> None:
    made = make(HOURLY, at="2026-11-20T04")
    [task] = made.tasks
    assert (made.workflow, made.phase) == (ETL, "report:hourly")
    assert (task.type, task.job, task.id, task.created) == (
        "report", "hourly", "id-1", "2026-11-21T13:45:10Z"
    )  # fmt: skip
    assert task.meta == "workflow=etl.toml&cron=2026-11-20T04:00:00Z&job=hourly"


def test_meta_of_the_request_is_zipped_and_crossed_with_every_time() -> None:
    made = make(REGIONS, from_="2026-01-01", to="2026-01-02",
                meta={"region": ["us", "eu"], "tier": ["1", "2"]})  # fmt: skip
    assert infos(made) == [
        "?region=us&day=2026-01-01", "?region=eu&day=2026-01-01",
        "?region=us&day=2026-01-02", "?region=eu&day=2026-01-02",
    ]  # fmt: skip
    assert parse_query(made.tasks[1].meta) == {
        "workflow": ETL, "job": "regions", "cron": "2026-01-01T00:00:00Z",
        "region": "eu", "tier": "2",
    }  # fmt: skip
    assert [task.id for task in made.tasks] == ["id-1", "id-2", "id-3", "id-4"]


@pytest.mark.parametrize(
    ("phase", "request_", "expected", "note"),
    [
        (REGIONS, {}, ["?region=us&day=2026-01-01", "?region=eu&day=2026-01-01"],
         "meta region:us,eu of the phase rule"),
        (FROM_FILE, {}, ["?r=us&d=20260101", "?r=apac&d=20260101"],
         "meta-file regions.csv of the phase rule"),
        (REGIONS, {"meta": {"region": "apac"}}, ["?region=apac&day=2026-01-01"], None),
        (FROM_FILE, {"meta_file": "regions.csv"}, ["?r=us&d=20260101", "?r=apac&d=20260101"],
         None),
    ],
)  # fmt: skip
def test_meta_defaults_to_the_phase_rules(
    phase: Phase, request_: dict[str, object], expected: list[str], note: str | None
) -> None:
    made = make(phase, at="2026-01-01", **request_)
    assert infos(made) == expected
    assert (note in made.notes) if note else made.notes == DEFAULT_NOTES


def test_the_requests_template_wins_and_a_job_may_be_given_with_the_task() -> None:
    made = make(REGIONS, task="rollup", job="regions", at="2026-01-01", template="{meta:region}")
    assert infos(made) == ["us", "eu"]
    assert "using the request's template" in made.notes


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        # the hour the clocks skip (02:00) is no task; the repeated one (02:00) is one task
        ({"from_": "2026-03-29", "to": "2026-03-29T04"},
         ["00+01:00", "01+01:00", "03+02:00", "04+02:00"]),
        ({"from_": "2026-10-25T01", "to": "2026-10-25T03"}, ["01+02:00", "02+02:00", "03+01:00"]),
        # an RFC 3339 time in the second 02:00 is that wall hour, planned once
        ({"at": "2026-10-25T01:30:00Z"}, ["02+02:00"]),
    ],
)  # fmt: skip
def test_hours_on_dst_days_are_the_wall_hours_that_exist(
    request_: dict[str, str], expected: list[str]
) -> None:
    made = make(HOURLY, zone=PARIS, by="hour", **request_)
    assert [c[11:13] + c[19:] for c in crons(made)] == expected
    assert len(set(infos(made))) == len(expected)


def test_days_over_dst_changes_are_local_midnights() -> None:
    made = make(zone=PARIS, from_="2026-03-28", to="2026-03-30")
    assert crons(made) == ["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00",
                           "2026-03-30T00:00:00+02:00"]  # fmt: skip
    assert infos(make(zone=PARIS, from_="2026-10-25T00:30:00Z")) == ["s3://raw/2026/10/25/"]


def test_today_is_now_in_the_zone() -> None:
    late = ZoneInfo("Pacific/Kiritimati")  # UTC+14: already the 22nd
    assert infos(make(zone=late)) == ["s3://raw/2026/11/22/"]
    assert crons(make(HOURLY)) == ["2026-11-21T13:45:10Z"]


def test_a_range_up_to_max_tasks_is_planned() -> None:
    assert len(make(from_="2026-01-01", to="2026-01-03", max_tasks=3).tasks) == 3


@pytest.mark.parametrize(
    ("request_", "field", "made"),
    [
        ({"from_": "2026-01-01", "to": "2026-01-04"}, "to", "makes 4 tasks"),
        ({"from_": "2026-01-01", "to": "2026-01-02", "meta": {"r": ["a", "b"]}}, "meta",
         "with 2 meta items makes 4 tasks"),
        ({"from_": "0001-01-01", "to": "9999-12-31T23", "by": "hour"}, "to",
         "makes 87649416 tasks"),  # counted, not built
        ({"at": "2026-01-01", "meta_file": "regions.csv", "template": "{meta:region}",
          "task": "extract"}, "meta_file", None),
    ],
)  # fmt: skip
def test_a_plan_over_max_tasks_is_refused_not_truncated(
    request_: dict[str, object], field: str, made: str | None
) -> None:
    with pytest.raises(BackloadError) as caught:
        make(max_tasks=1 if made is None else 3, **request_)
    assert (caught.value.field, caught.value.status) == (field, 422)
    assert "over the limit of" in str(caught.value)
    assert made is None or made in str(caught.value)


def test_a_plan_over_the_size_limit_is_refused() -> None:
    with pytest.raises(BackloadError, match="characters of info and meta"):
        make(from_="2026-01-01", to="2026-12-31", meta={"k": "x" * 4096},
             template="{meta:k}" * 512, max_tasks=1000)  # fmt: skip


BAD = [
    ({"from_": "2026-02-01", "to": "2026-01-01"}, EXTRACT, 422, "from", "is after to"),
    ({"from_": "2026-1-1"}, EXTRACT, 400, "from", "not a time: use 2006-01-02"),
    ({"to": "yesterday"}, EXTRACT, 400, "to", "not a time"),
    ({"from_": "2026-01-01", "to": "2026-02-30"}, EXTRACT, 400, "to", "not a valid time"),
    ({"at": "2026-01-01T24"}, EXTRACT, 400, "at", "not a valid time"),
    ({"at": "0001-01-01T00:00:00+01:00"}, EXTRACT, 400, "at", "not a valid time"),
    ({"at": "2026-01-01", "from_": "2026-01-01"}, EXTRACT, 400, "at", "not both"),
    ({"by": "week"}, EXTRACT, 422, "by", "must be one of day, hour, month"),
    ({"task": "nope"}, Phase(), 404, "task", "task nope: no phase runs it"),
    ({"task": "x:a", "job": "b"}, EXTRACT, 422, "job", "differs from task"),
    ({"meta": {"r": ["a"]}, "meta_file": "regions.csv"}, REGIONS, 400, "meta", "use one only"),
    ({"meta": {"r": ["a", "b"], "s": ["c"]}}, REGIONS, 422, "meta", "differ in length"),
    ({"meta": {"r": []}}, REGIONS, 422, "meta", "no values"),
    ({"meta": {"workflow": "other.toml"}}, REGIONS, 422, "meta", "a key flowlord sets"),
    ({"meta_file": "../secrets.csv"}, EXTRACT, 422, "meta_file", "outside the workflow folder"),
    ({"meta_file": "a\0.csv"}, EXTRACT, 422, "meta_file", "not a file name"),
    ({"template": "?d={yyy}"}, EXTRACT, 422, "template", "unknown template key {yyy}"),
    ({"meta": {"r": ["a"]}}, REGIONS, 422, "template", "meta key 'region' not in task meta"),
    ({}, PhaseRecord(task="t", rule="cron=@daily", file_path=ETL), 422, "template",
     "no template found for t"),
    ({}, PhaseRecord(task="t", template="x", file_path=ETL, status="invalid phase: rule and "
     "dependsOn are blank"), 422, "task", "has errors: invalid phase"),
    ({"at": "2026-03-29T02", "by": "hour"}, HOURLY, 422, "at", "the clocks skip it"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "phase", "status", "field", "message"), BAD)
def test_bad_requests_name_the_field(
    request_: dict[str, object], phase: Phase, status: int, field: str, message: str
) -> None:
    with pytest.raises(BackloadError) as caught:
        make(phase, zone=PARIS, **request_)
    assert (caught.value.status, caught.value.field) == (status, field)
    assert message in str(caught.value)


@pytest.mark.parametrize("by", ["hour", "day", "month"])
@pytest.mark.parametrize(
    ("first", "last"),
    [
        (datetime(2025, 12, 30, 22, tzinfo=PARIS), datetime(2026, 3, 2, 1, tzinfo=PARIS)),
        (datetime(2024, 1, 31, 12, tzinfo=UTC), datetime(2024, 3, 31, 11, 59, tzinfo=UTC)),
        (datetime(2024, 1, 31, 12, tzinfo=UTC), datetime(2024, 3, 31, 12, tzinfo=UTC)),
        (datetime(9999, 11, 30, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_step_count_counts_what_steps_builds(first: datetime, last: datetime, by: str) -> None:
    built = steps(first, last, by)
    assert step_count(first, last, by) == len(built) > 0
    assert built[0] == first and built[-1] <= last
    assert all(when.tzinfo is first.tzinfo for when in built)
    assert step_count(last, first, by) == 0 == len(steps(last, first, by))
