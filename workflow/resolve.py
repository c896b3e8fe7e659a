"""What to do with a done task: the children to start, a retry, a failure, an alert.

Pure: the taskmaster looks up the phases and what completed in this run, passes them in with
`now`, and performs the returned `Decision`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from workflow.batch import DEFAULT_MAX_TASKS, BatchError
from workflow.build import MetaRows, phase_tasks
from workflow.phase import PhaseRecord
from workflow.policy import PolicyRuleError, RetryPolicy
from workflow.query import parse_query
from workflow.require import Requirement, parse_require, satisfied
from workflow.task import Result, Task, rfc3339
from workflow.template import TemplateError, info_time
from workflow.validate import status_has_error

__all__ = [
    "Decision",
    "MetaRows",
    "Run",
    "attempt_of",
    "child_tasks",
    "resolve",
    "satisfied",
    "task_name",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """Children to start (each with its phase), a retry to send later, the task that failed
    for good (for the failed topic), alerts, and what to log."""

    send: tuple[tuple[PhaseRecord, Task], ...] = ()
    failed: Task | None = None
    retry: tuple[datetime, Task] | None = None
    alerts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """What the resolver needs to know of the done task's workflow run."""

    phase: PhaseRecord
    children: Sequence[PhaseRecord]
    file_phases: Sequence[PhaseRecord] = ()  # at least those of the file with a `require` rule
    completed: Collection[str] = ()
    max_tasks: int = DEFAULT_MAX_TASKS
    meta_rows: MetaRows | None = None


def task_name(task: Task) -> str:
    """`type:job`, or `type` when the task has no job: how phases name their parents."""
    job = task.job or task.meta_value("job")
    return f"{task.type}:{job}" if job else task.type


def resolve(done: Task, run: Run, *, now: datetime) -> Decision:
    """Decide what `done` leads to (a retry's due time follows the phase's `RetryPolicy`).

    Raises ValueError when the done task itself is unusable (a bad time in its info).
    """
    if done.result == Result.COMPLETE:
        return _complete(done, run, now)
    if done.result == Result.ERROR:
        return _error(done, run, now)
    if done.result == Result.ALERT:
        return Decision(alerts=(f"{task_name(done)} {done.id}: {done.msg}",))
    if done.result == Result.WARN:
        return Decision(notes=(f"warning from {task_name(done)} {done.id}: {done.msg}",))
    return Decision(errors=(f"{task_name(done)} {done.id}: done with no result",))


def _complete(done: Task, run: Run, now: datetime) -> Decision:
    name = task_name(done)
    parent_meta = done.meta_values()
    completed = {*run.completed, name}
    ready = [child for child in run.children if _requirement(child).met(parent_meta, completed)]
    # A phase that requires this task may now be ready if its parent completed earlier; the
    # task completing now stands in for that parent (its meta, its time).
    ready += [
        phase
        for phase in run.file_phases
        if phase not in run.children and _requirement(phase).names(name)
        and phase.depends_on and satisfied(phase.depends_on, completed)
        and _requirement(phase).met(parent_meta, completed)
    ]  # fmt: skip
    notes = tuple(
        f"{child.task} waits for require={parse_query(child.rule)['require']}"
        for child in run.children
        if child not in ready
    )
    when = task_time(done, now)  # a bad time is the message's fault: raised, not per phase
    sends, errors = [], []
    for phase in ready:
        if status_has_error(phase.status):
            errors.append(f"{phase.file_path}: {phase.task}: not started: {phase.status}")
            continue
        try:
            sends += [(phase, t) for t in child_tasks(done, phase, run, when, now)]
        except (BatchError, TemplateError) as err:
            errors.append(f"{phase.file_path}: {phase.task}: {err}")
    return Decision(send=tuple(sends), notes=notes, errors=tuple(errors))


def child_tasks(
    done: Task, phase: PhaseRecord, run: Run, when: datetime, now: datetime
) -> list[Task]:
    """The tasks one child phase starts at task time `when`: one per batch item, parent's id.

    Its template may use the parent's meta as well as its own.
    """
    parent_meta = done.meta_values()
    meta = {"workflow": parent_meta.get("workflow", phase.file_path)}
    if phase.job:
        meta["job"] = phase.job
    if "cron" in parent_meta:
        meta["cron"] = parent_meta["cron"]
    return phase_tasks(
        phase, when, meta=meta, new_id=lambda: done.id, created=now, meta_rows=run.meta_rows,
        max_tasks=run.max_tasks, template_meta=parent_meta,
    )  # fmt: skip


def task_time(done: Task, now: datetime) -> datetime:
    """A done task's time: from its info (`day`, `hour`... or a dated path), else its cron meta."""
    when = info_time(done.info)
    if when is not None:
        return when
    cron = done.meta_value("cron")
    return datetime.fromisoformat(cron) if cron else now


def _error(done: Task, run: Run, now: datetime) -> Decision:
    attempt = attempt_of(done)
    rule = parse_query(run.phase.rule)
    if status_has_error(run.phase.status):  # run does not send what validation refuses
        failed = f"{task_name(done)} {done.id} failed; no retry, its phase has errors: "
        failed += f"{run.phase.status}: {done.msg}"
    elif attempt < run.phase.retry:
        policy, errors = _policy(run.phase, rule)
        wait = policy.wait(attempt + 1, run_id=done.id, task=task_name(done))
        retry = replace(
            done.with_meta(retry=str(attempt + 1)),
            result=Result.NONE, started="", ended="", msg="", created=rfc3339(now),
        )  # fmt: skip
        note = f"retry {attempt + 1}/{run.phase.retry} of {task_name(done)} {done.id} in {wait}"
        return Decision(retry=(now + wait, retry), notes=(note,), errors=errors)
    else:
        failed = f"{task_name(done)} {done.id} failed after {attempt} retries: {done.msg}"
    alerts = () if _no_alert(rule) else (failed,)
    return Decision(failed=done, alerts=alerts, notes=(failed,))


def _policy(phase: PhaseRecord, rule: dict[str, str]) -> tuple[RetryPolicy, tuple[str, ...]]:
    """The phase's retry policy; one validation refused (a stale status) retries by the
    defaults and says why."""
    try:
        return RetryPolicy.of(rule), ()
    except PolicyRuleError as err:
        return RetryPolicy(), (f"{phase.file_path}: {phase.task}: {err}",)


def attempt_of(done: Task) -> int:
    """Which attempt a task is: its meta `retry` (0, or not a number: the first)."""
    try:
        return max(int(done.meta_value("retry") or 0), 0)
    except ValueError:
        return 0


def _requirement(phase: PhaseRecord) -> Requirement:
    """The phase's `require=` (validation reports a malformed one; here it requires nothing
    it cannot name)."""
    try:
        return parse_require(parse_query(phase.rule).get("require", ""))
    except ValueError:
        return Requirement()


def _no_alert(rule: dict[str, str]) -> bool:
    """`no_alert` alone or with a true value turns the alert off."""
    return "no_alert" in rule and rule["no_alert"].lower() not in {"false", "0", "no", "off"}
