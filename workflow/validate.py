"""Validation statuses: what is wrong with a phase, worded as DESIGN.md's table.

Validation never fails a file; it produces one status string per phase ("" when fine). It is
also the contract of `flowlord run` (validate ⇔ run): whatever `run` cannot do with a phase
is an error here, and `run` leaves out every phase whose status has an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from workflow.batch import DEFAULT_MAX_TASKS, BatchError, expand
from workflow.build import CRON_META_KEYS, FILE_META_KEYS
from workflow.cron import CronError, EverySchedule, parse_cron
from workflow.duration import DurationError, in_go_range, parse_duration
from workflow.phase import Phase, is_valid_topic
from workflow.policy import policy_problems
from workflow.query import invalid_parts, parse_query
from workflow.require import parse_require, satisfied
from workflow.template import template_problem

RULE_KEYS = frozenset(
    {
        "cron", "offset", "job", "files", "count", "require", "retry_delay",
        "no_alert", "for", "by", "meta", "meta-file", "ttl", "catchup", "backoff", "max_delay",
    }
)  # fmt: skip
DURATION_KEYS = ("offset", "retry_delay", "for")
BATCH_KEYS = ("for", "by", "meta", "meta-file")
RETRY_LIMIT = 10
BLANK = "invalid phase: rule and dependsOn are blank"
WARNING_PREFIXES = ("warning:", "ignored rule:")
VALIDATION_VERSION = 4
"""Bumped whenever a rule here changes, so that stored statuses are computed again."""

# Batch rules are checked by expanding them once at a fixed time, through the code run uses.
_REFERENCE_TIME = datetime(2000, 1, 1, tzinfo=UTC)
_PLACEHOLDER_ROWS = ({},)


def phase_statuses(
    phases: Sequence[Phase], notes: Sequence[Iterable[str]] | None = None
) -> list[str]:
    """The status of each phase of one file; `notes[i]` are parse findings (unknown keys...)."""
    tasks = {p.task for p in phases}
    topics = {p.topic for p in phases}
    notes = notes or [()] * len(phases)
    return [
        phase_status(p, tasks=tasks, topics=topics, notes=n)
        for p, n in zip(phases, notes, strict=True)
    ]


def phase_status(
    phase: Phase, *, tasks: set[str], topics: set[str], notes: Iterable[str] = ()
) -> str:
    """Findings for one phase in DESIGN.md order, joined with `; `."""
    if not phase.rule and not phase.depends_on:
        return BLANK
    rule = parse_query(phase.rule)
    findings = _shape_findings(phase, rule, tasks=tasks, topics=topics)
    findings += [f"warning: unknown rule key: {k}" for k in rule if k not in RULE_KEYS]
    findings += notes
    findings += _runnable_findings(phase, rule, tasks=tasks)
    return "; ".join(findings)


def _shape_findings(
    phase: Phase, rule: dict[str, str], *, tasks: set[str], topics: set[str]
) -> list[str]:
    """How the phase is scheduled: by cron, files or a parent, and whether that can work."""
    findings: list[str] = []
    if "cron" not in rule and "files" not in rule and not phase.depends_on:
        findings.append("non-scheduled phase: use dependsOn, cron or files")
    if "cron" in rule:
        findings += _cron_findings(rule["cron"])
    if invalid_parts(phase.rule):
        findings.append(f"invalid rule format: {phase.rule}")
    if phase.depends_on and not _parent_exists(phase.depends_on, tasks=tasks, topics=topics):
        findings.append(f"parent task not found: {phase.depends_on}")
    if "cron" in rule and phase.depends_on:
        findings.append(f"ignored rule: cron={rule['cron']}")
    if phase.retry > RETRY_LIMIT:
        findings.append("warning: retry count exceeds recommended limit")
    return findings


def _runnable_findings(phase: Phase, rule: dict[str, str], *, tasks: set[str]) -> list[str]:
    """What `run` would fail on: durations, the topic, the template, batch and require rules."""
    facts = _rule_facts(phase.rule, phase.file_path.count("/"))
    findings = list(facts.bad_durations)
    if not is_valid_topic(phase.topic):
        findings.append(f"invalid topic: {phase.topic}")
    findings += facts.out_of_range
    if "{" in phase.template:
        fillable = _fillable_meta(phase, rule, facts.batch_meta)
        problem = _template_problem(phase.template, fillable)
        if problem:
            findings.append(f"invalid template: {problem}")
    if facts.batch_problem:
        findings.append(facts.batch_problem)
    if "require" in rule:
        findings += _require_findings(rule, tasks=tasks)
    return findings + list(facts.policy_problems)


@dataclass(frozen=True, slots=True)
class _RuleFacts:
    """What a rule alone says about running its phase (memoized: workflows repeat rules)."""

    bad_durations: tuple[str, ...]
    out_of_range: tuple[str, ...]
    batch_problem: str
    batch_meta: frozenset[str] | None
    policy_problems: tuple[str, ...]


@lru_cache(maxsize=16384)
def _rule_facts(rule_text: str, depth: int) -> _RuleFacts:
    """`depth` is how many folders deep the workflow file sits (a meta-file may climb that
    many)."""
    rule = parse_query(rule_text)
    bad = [key for key in DURATION_KEYS if key in rule and _duration(rule[key]) is None]
    out_of_range = _out_of_range(rule, bad)
    skip_batch = "for" in bad or "for" in out_of_range
    batch_problem, batch_meta = _batch_check(rule, depth, skip=skip_batch)
    return _RuleFacts(
        bad_durations=tuple(f"invalid duration: {key}={rule[key]}" for key in bad),
        out_of_range=tuple(f"invalid duration: {k}={rule[k]} (out of range)" for k in out_of_range),
        batch_problem=batch_problem,
        batch_meta=None if batch_meta is None else frozenset(batch_meta),
        policy_problems=tuple(
            f"invalid rule: {err}"
            for err in policy_problems(rule)
            if err.key not in bad and err.key not in out_of_range  # reported as durations
        ),
    )


@lru_cache(maxsize=16384)
def _template_problem(template: str, fillable: frozenset[str] | None) -> str:
    return template_problem(template, fillable)


def status_has_error(status: str) -> bool:
    """True when any finding of `status` is an error rather than a warning."""
    return bool(status) and any(
        finding and not finding.startswith(WARNING_PREFIXES) for finding in status.split("; ")
    )


def status_has_warning(status: str) -> bool:
    """True when any finding of `status` is a warning."""
    return any(finding.startswith(WARNING_PREFIXES) for finding in status.split("; "))


def _parent_exists(depends_on: str, *, tasks: set[str], topics: set[str]) -> bool:
    """`topic` is satisfied by any phase of that topic; `topic:job` only by that exact task."""
    return depends_on in tasks if ":" in depends_on else depends_on in topics


def _cron_findings(expr: str) -> tuple[str, ...]:
    """`parse_cron` is memoized itself; only a bad expression is parsed again."""
    try:
        parse_cron(expr)
    except CronError as err:
        return (f"no valid rule found: cron={expr} ({err})",)
    return ()


def _out_of_range(rule: dict[str, str], bad_durations: list[str]) -> list[str]:
    """Keys whose duration is past Go's ~292 years: a fire time plus it could leave the
    calendar."""
    keys = [k for k in DURATION_KEYS if k in rule and k not in bad_durations]
    found = [k for k in keys if not in_go_range(_duration(rule[k]))]
    if "cron" in rule and _every_out_of_range(rule["cron"]):
        found.insert(0, "cron")
    return found


def _every_out_of_range(expr: str) -> bool:
    try:
        schedule = parse_cron(expr)
    except CronError:
        return False
    return isinstance(schedule, EverySchedule) and not in_go_range(schedule.interval)


def _batch_check(rule: dict[str, str], depth: int, *, skip: bool) -> tuple[str, set[str] | None]:
    """A batch rule's finding ("" when fine) and the meta keys its items add (None: unknown,
    as a meta-file's columns are). Expanded once, by the same code as at run time."""
    if skip or not any(key in rule for key in BATCH_KEYS):
        return "", set()
    rows = _PLACEHOLDER_ROWS if "meta-file" in rule else None
    try:
        items = expand(rule, _REFERENCE_TIME, meta_rows=rows, max_tasks=DEFAULT_MAX_TASKS)
        if "meta-file" in rule:
            _check_meta_file_name(rule["meta-file"], depth)
    except BatchError as err:
        value = rule.get(err.key, "")
        reason = str(err).removeprefix(f"{err.key}={value}: ")
        return f"invalid rule: {err.key}={value} ({reason})", set()
    if "meta-file" in rule:
        return "", None
    return "", {key for item in items for key in item.meta}


def _check_meta_file_name(name: str, depth: int) -> None:
    """What can be known of a meta-file without reading it: its type, and that its path stays
    inside the workflow folder (relative to the workflow file, never absolute)."""
    if not name.lower().endswith((".csv", ".json", ".jsonl", ".ndjson")):
        raise BatchError("meta-file", "unsupported meta-file type: use .csv, .json or .jsonl")
    if "\0" in name:  # no file can have that name: opening it would fail at every fire
        raise BatchError("meta-file", "contains a NUL character")
    for part in name.split("/"):
        depth += -1 if part == ".." else 0 if part in ("", ".") else 1
        if depth < 0 or name.startswith("/"):
            raise BatchError("meta-file", "outside the workflow folder")


def _fillable_meta(
    phase: Phase, rule: dict[str, str], batch_meta: frozenset[str] | None
) -> frozenset[str] | None:
    """The meta keys every task of this phase is sure to carry; None when it cannot be known
    (a child gets its parent's meta, a meta-file its columns)."""
    if phase.depends_on or batch_meta is None:
        return None
    sources = [keys for key, keys in (("cron", CRON_META_KEYS), ("files", FILE_META_KEYS))
               if key in rule]  # fmt: skip
    if not sources:
        return None  # not scheduled at all: reported as such
    fillable = frozenset.intersection(*sources) | batch_meta
    return fillable | {"job"} if phase.job else fillable


def _require_findings(rule: dict[str, str], *, tasks: set[str]) -> list[str]:
    if "require" not in rule:
        return []
    text = rule["require"]
    try:
        requirement = parse_require(text)
    except ValueError as err:
        return [f"invalid rule: require={text} ({err})"]
    missing = [t for t in requirement.tasks if not satisfied(t, tasks)]
    return [f"invalid rule: require={text} (no phase {t} in this file)" for t in missing]


# Workflows repeat a few durations (`5m`, `-1h`): parsing is memoized, as parse_cron is.
@lru_cache(maxsize=4096)
def _duration(text: str) -> timedelta | None:
    """The duration `text` names, or None when it is not one."""
    try:
        return parse_duration(text)
    except DurationError:
        return None
