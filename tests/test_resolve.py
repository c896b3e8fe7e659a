"""The resolver: what a done task leads to, decided purely from the phases and `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflow import PhaseRecord, Result, Task, parse_workflow
from workflow.policy import jitter_fraction
from workflow.resolve import Run, resolve, satisfied, task_name

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WORKFLOW = """
[[Phase]]
task = "extract"
rule = "cron=0 2 * * *"
retry = 2
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "transform:orders"
dependsOn = "extract"
rule = "retry_delay=10m"
retry = 1
template = "?day={yyyy}-{mm}-{dd}&t=orders"

[[Phase]]
task = "transform:customers"
dependsOn = "extract"
rule = "no_alert=true"
template = "?day={yyyy}-{mm}-{dd}&t=customers"

[[Phase]]
task = "load"
dependsOn = "transform:orders"
rule = "require=transform:customers"
template = "?day={yyyy}-{mm}-{dd}&w={meta:workflow}"

[[Phase]]
task = "backfill"
dependsOn = "load"
rule = "for=-48h&by=day&meta=region:us,eu"
template = "?day={yyyy}-{mm}-{dd}&region={meta:region}"
"""
PHASES = {p.task: p for p in parse_workflow(WORKFLOW.encode(), "etl.toml").phases}


def done(task: str, result: Result, *, retry: int = 0, info: str = "?day=2026-11-20") -> Task:
    topic, _, job = task.partition(":")
    meta = "workflow=etl.toml&cron=2026-11-21T02:00:00Z" + (f"&job={job}" if job else "")
    meta += f"&retry={retry}" if retry else ""
    return Task(type=topic, job=job, info=info, meta=meta, id="run-1", result=result, msg="boom")


def run_of(task: str, completed: tuple[str, ...] = ()) -> Run:
    children = [p for p in PHASES.values() if p.depends_on in (task, task.partition(":")[0])]
    return Run(
        phase=PHASES[task], children=children, file_phases=list(PHASES.values()),
        completed=completed,
    )  # fmt: skip


def sent(decision) -> list[tuple[str, str, str]]:
    return [(phase.topic, task.job, task.info) for phase, task in decision.send]


def test_complete_starts_children_with_parent_id_and_meta() -> None:
    decision = resolve(done("extract", Result.COMPLETE), run_of("extract"), now=NOW)
    assert sent(decision) == [
        ("transform", "orders", "?day=2026-11-20&t=orders"),
        ("transform", "customers", "?day=2026-11-20&t=customers"),
    ]
    child = decision.send[0][1]
    assert child.id == "run-1"
    assert child.meta_values() == {
        "workflow": "etl.toml", "job": "orders", "cron": "2026-11-21T02:00:00Z",
    }  # fmt: skip
    assert child.created == "2026-11-21T12:00:00Z"
    assert decision.errors == ()


def test_require_holds_a_child_until_the_required_task_completed() -> None:
    first = resolve(
        done("transform:orders", Result.COMPLETE), run_of("transform:orders", ("extract",)),
        now=NOW,
    )  # fmt: skip
    assert first.send == ()
    assert first.notes == ("load waits for require=transform:customers",)
    second = resolve(
        done("transform:customers", Result.COMPLETE),
        run_of("transform:customers", ("extract", "transform:orders")), now=NOW,
    )  # fmt: skip
    assert sent(second) == [("load", "", "?day=2026-11-20&w=etl.toml")]


def test_require_already_met_starts_the_child_at_once() -> None:
    decision = resolve(
        done("transform:orders", Result.COMPLETE),
        run_of("transform:orders", ("extract", "transform:customers")), now=NOW,
    )  # fmt: skip
    assert [phase.topic for phase, _ in decision.send] == ["load"]


def test_batch_rules_expand_a_child() -> None:
    decision = resolve(done("load", Result.COMPLETE), run_of("load"), now=NOW)
    assert [task.info for _, task in decision.send] == [
        "?day=2026-11-18&region=us", "?day=2026-11-18&region=eu",
        "?day=2026-11-19&region=us", "?day=2026-11-19&region=eu",
        "?day=2026-11-20&region=us", "?day=2026-11-20&region=eu",
    ]  # fmt: skip
    assert {task.meta_value("region") for _, task in decision.send} == {"us", "eu"}


def test_a_bad_child_fails_alone() -> None:
    broken = PhaseRecord(
        task="broken", depends_on="extract", template="{nope}", file_path="etl.toml"
    )
    run = Run(phase=PHASES["extract"], children=[broken, PHASES["transform:orders"]])
    decision = resolve(done("extract", Result.COMPLETE), run, now=NOW)
    assert [phase.topic for phase, _ in decision.send] == ["transform"]
    assert len(decision.errors) == 1
    assert decision.errors[0].startswith("etl.toml: broken: ")
    assert "nope" in decision.errors[0]


def test_error_retries_after_delay_plus_a_deterministic_jitter() -> None:
    decision = resolve(done("transform:orders", Result.ERROR), run_of("transform:orders"), now=NOW)
    assert decision.retry is not None
    when, task = decision.retry
    jitter = jitter_fraction("run-1", "transform:orders", 1)
    assert when == NOW + timedelta(minutes=10) * (1 + 0.4 * jitter)
    again = resolve(done("transform:orders", Result.ERROR), run_of("transform:orders"), now=NOW)
    assert again.retry == decision.retry  # a replay computes the same due time
    assert task.meta_value("retry") == "1"
    assert (task.result, task.msg, task.id) == (Result.NONE, "", "run-1")
    assert decision.send == () and decision.alerts == ()


def test_exhausted_retries_fail_and_alert() -> None:
    decision = resolve(done("extract", Result.ERROR, retry=2), run_of("extract"), now=NOW)
    assert decision.retry is None
    assert decision.send == () and decision.failed is not None
    assert decision.failed.id == "run-1"
    assert decision.alerts == ("extract run-1 failed after 2 retries: boom",)


def test_no_alert() -> None:
    run = Run(phase=PHASES["transform:customers"], children=[])
    decision = resolve(done("transform:customers", Result.ERROR), run, now=NOW)
    assert (decision.send, decision.alerts) == ((), ())
    assert decision.failed is not None
    assert decision.notes == ("transform:customers run-1 failed after 0 retries: boom",)


def test_alert_warn_and_no_result() -> None:
    run = run_of("extract")
    assert resolve(done("extract", Result.ALERT), run, now=NOW).alerts == ("extract run-1: boom",)
    warned = resolve(done("extract", Result.WARN), run, now=NOW)
    assert (warned.alerts, warned.send, warned.notes) == (
        (),
        (),
        ("warning from extract run-1: boom",),
    )
    assert resolve(done("extract", Result.NONE), run, now=NOW).errors == (
        "extract run-1: done with no result",
    )


def test_names_and_satisfaction() -> None:
    assert task_name(Task(type="a", job="j")) == "a:j"
    assert task_name(Task(type="a", meta="job=k")) == "a:k"
    assert satisfied("a", {"a:j"}) and satisfied("a:j", {"a:j"})
    assert not satisfied("a:k", {"a:j"}) and not satisfied("b", {"a:j"})


GO_REQUIRE = """
[[Phase]]
task = "ingest"
rule = "files=/in/*.csv"

[[Phase]]
task = "report"
dependsOn = "ingest"
rule = "require={meta:file}"
template = "{meta:file}"

[[Phase]]
task = "audit"
dependsOn = "ingest"
rule = "require={meta:file},ingest"
template = "?f={meta:filename}"
"""
GO_PHASES = {p.task: p for p in parse_workflow(GO_REQUIRE.encode(), "go.toml").phases}


@pytest.mark.parametrize(
    ("meta", "started"),
    [
        ("workflow=go.toml&file=/in/a.csv&filename=a.csv", ["report", "audit"]),
        ("workflow=go.toml&file=&filename=a.csv", []),
        ("workflow=go.toml", []),
    ],
)
def test_require_meta_form_of_the_go_flowlord(meta: str, started: list[str]) -> None:
    """`require={meta:KEY}` starts the child only when the parent's meta has a non-empty KEY;
    mixed with a task name, both must hold (the parent itself completes here)."""
    parent = Task(type="ingest", meta=meta, id="r", result=Result.COMPLETE)
    run = Run(
        phase=GO_PHASES["ingest"], children=[GO_PHASES["report"], GO_PHASES["audit"]],
        file_phases=list(GO_PHASES.values()),
    )  # fmt: skip
    decision = resolve(parent, run, now=NOW)
    assert [phase.topic for phase, _ in decision.send] == started
    assert decision.errors == ()


def test_a_child_with_an_error_status_is_not_started_and_says_why() -> None:
    bad = PhaseRecord(
        task="bad topic",
        depends_on="extract",
        file_path="etl.toml",
        status="invalid topic: bad topic",
    )
    run = Run(phase=PHASES["extract"], children=[bad, PHASES["transform:orders"]])
    decision = resolve(done("extract", Result.COMPLETE), run, now=NOW)
    assert [phase.topic for phase, _ in decision.send] == ["transform"]
    assert decision.errors == ("etl.toml: bad topic: not started: invalid topic: bad topic",)


def test_an_error_of_a_phase_with_an_error_status_fails_without_a_retry() -> None:
    """A retry_delay past the calendar is a status error: no retry time is ever computed."""
    [phase] = parse_workflow(
        b'[[Phase]]\ntask = "x"\nrule = "cron=@daily&retry_delay=99999999h"\nretry = 3\n', "x.toml"
    ).phases
    assert phase.status == "invalid duration: retry_delay=99999999h (out of range)"
    failed = Task(type="x", meta="workflow=x.toml", id="r", result=Result.ERROR, msg="boom")
    decision = resolve(failed, Run(phase=phase, children=[]), now=NOW)
    assert decision.retry is None
    assert decision.send == () and decision.failed == failed
    assert "no retry, its phase has errors" in decision.alerts[0]


def test_a_done_time_at_the_edge_of_the_calendar_is_the_message_fault() -> None:
    edge = done("extract", Result.COMPLETE, info="?time=9999-12-31T23:59:59-01:00")
    with pytest.raises(ValueError, match="invalid time"):
        resolve(edge, run_of("extract"), now=NOW)
