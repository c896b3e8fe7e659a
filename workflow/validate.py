"""Validation statuses: what is wrong with a phase, worded as DESIGN.md's table.

Validation never fails a file; it produces one status string per phase ("" when fine).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from workflow.cron import CronError, parse_cron
from workflow.duration import DurationError, parse_duration
from workflow.phase import Phase
from workflow.query import invalid_parts, parse_query

RULE_KEYS = frozenset(
    {
        "cron", "offset", "job", "files", "count", "require", "retry_delay",
        "no_alert", "for", "by", "meta", "meta-file",
    }
)  # fmt: skip
DURATION_KEYS = ("offset", "retry_delay", "for")
RETRY_LIMIT = 10
BLANK = "invalid phase: rule and dependsOn are blank"
WARNING_PREFIXES = ("warning:", "ignored rule:")


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
    findings += [f"warning: unknown rule key: {k}" for k in rule if k not in RULE_KEYS]
    findings += notes
    for key in DURATION_KEYS:
        if key in rule and not _is_duration(rule[key]):
            findings.append(f"invalid duration: {key}={rule[key]}")
    return "; ".join(findings)


def status_has_error(status: str) -> bool:
    """True when any finding of `status` is an error rather than a warning."""
    return any(
        finding and not finding.startswith(WARNING_PREFIXES) for finding in status.split("; ")
    )


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


# Workflows repeat a few durations (`5m`, `-1h`): the check is memoized, as parse_cron is.
@lru_cache(maxsize=4096)
def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except DurationError:
        return False
    return True
