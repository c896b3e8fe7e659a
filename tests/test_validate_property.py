"""validate ⇔ run, as a property: every phase `validate` accepts, `run` can fire and resolve.

Phases are built from rule parts, templates and topics that include every kind of finding;
each one whose status has no error is then run through the code `flowlord run` uses for its
kind (a cron fire, a file message, a completed parent), which must not fail.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from workflow import PhaseRecord, Result, Task, parse_workflow
from workflow.cron import parse_cron
from workflow.duration import parse_duration
from workflow.files import FileRules
from workflow.query import parse_query
from workflow.resolve import Run, child_tasks
from workflow.schedule import CronJob, Firing, cron_tasks
from workflow.validate import status_has_error

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RULE_PARTS = (
    "cron=@daily", "cron=0 2 * * *", "cron=@every 5m", "cron=@every 3000000h",
    "files=/in/*.csv", "offset=-1h", "offset=2600000h", "offset=soon", "for=-48h", "for=-9999h",
    "by=day", "by=hour", "by=week", "meta=region:us,eu", "meta=bad", "meta-file=r.csv",
    "meta-file=../r.csv", "retry_delay=5m", "retry_delay=99999999h", "require={meta:file}",
    "require=p", "require=nope", "job=j",
)  # fmt: skip
TEMPLATE_PARTS = (
    "{yyyy}", "{mm}{dd}", "{hh}", "{ts}", "{yyy}", "{meta:region}", "{meta:file}",
    "{meta:filename}", "{meta:cron}", "{meta:job}", "{meta:workflow}", "{meta:x}", "x", "{",
)  # fmt: skip
TOPICS = ("t", "t.v-2", "a b", "x/y", ".h", "caf\u00e9")
PARENT_META = {key: "v" for key in ("region", "file", "filename", "cron", "job", "x")}


def meta_rows(_workflow: str, _name: str) -> list[dict[str, str]]:
    """A one-row meta-file with every column a template may name. What a meta-file holds is
    known only when it is read at fire time (validation cannot read it), as a parent's meta
    is: a missing column, or rows times a `for` range over max_tasks, fail that fire then."""
    return [{**PARENT_META, "region": "us"}]


@st.composite
def phases(draw: st.DrawFn) -> PhaseRecord:
    topic = draw(st.sampled_from(TOPICS))
    job = draw(st.sampled_from(("", ":j")))
    rule = "&".join(draw(st.lists(st.sampled_from(RULE_PARTS), max_size=4, unique=True)))
    template = "".join(draw(st.lists(st.sampled_from(TEMPLATE_PARTS), max_size=4)))
    parent = draw(st.sampled_from(("", "p")))
    body = (
        '[[Phase]]\ntask = "p"\nrule = "cron=@daily"\n\n'
        f'[[Phase]]\ntask = "{topic}{job}"\nrule = "{rule}"\n'
        f'template = "{template}"\ndependsOn = "{parent}"\n'
    )
    return parse_workflow(body.encode(), "sub/w.toml").phases[-1]


def run_like_flowlord(phase: PhaseRecord) -> int:
    """Start `phase` the way `run` would for its kind; returns how many tasks it made."""
    rule = parse_query(phase.rule)
    if phase.depends_on:
        meta = "&".join(f"{key}={value}" for key, value in PARENT_META.items())
        parent = Task(type="p", meta=meta, id="r", result=Result.COMPLETE)
        run = Run(phase=phase, children=[phase], meta_rows=meta_rows)
        return len(child_tasks(parent, phase, run, NOW, NOW))
    made = 0
    if "cron" in rule:
        job = CronJob(phase, parse_cron(rule["cron"]), parse_duration(rule.get("offset", "0")))
        fire = Firing(job=job, at=job.schedule.next_after(NOW))
        made += len(cron_tasks(fire, new_id=lambda: "id", created=NOW, meta_rows=meta_rows))
    if "files" in rule:
        rules = FileRules()
        rules.set_file(phase.file_path, [phase])
        tasks, errors = rules.tasks(
            '{"path": "/in/2026-11-20.csv"}', new_id=lambda: "id", now=NOW, meta_rows=meta_rows
        )
        assert errors == []
        made += len(tasks)
    return made


@settings(max_examples=400, deadline=None)
@given(phases())
def test_what_validate_accepts_run_can_do(phase: PhaseRecord) -> None:
    if status_has_error(phase.status):
        return
    assert run_like_flowlord(phase) > 0, phase
