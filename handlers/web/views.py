"""What the pages show, decided from the domain's values without any I/O: a workflow's health,
the order of task states, which actions a record allows. The routes read; these decide."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flowlord.listing import WorkflowSummary
from flowlord.state import TaskRecord
from workflow.controls import Control
from workflow.state import ENDS, State
from workflow.validate import status_has_error, status_has_warning

STATE_ORDER = (
    State.QUEUED, State.SENT, State.WAITING, State.HELD, State.COMPLETE, State.WARNED,
    State.ERROR, State.FAILED, State.CANCELLED,
)  # fmt: skip
"""How task states are listed: the live ones first, then how they ended."""
STATE_TONE = {
    State.COMPLETE: "ok", State.WARNED: "warn", State.ERROR: "bad", State.FAILED: "bad",
    State.CANCELLED: "muted", State.HELD: "muted", State.QUEUED: "info", State.SENT: "info",
    State.WAITING: "info",
}  # fmt: skip
"""The colour family of a state's badge."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRow:
    """One workflow file on the overview: its summary, its health, its task counts by state
    (over the window the page names), and its whole-file switch."""

    summary: WorkflowSummary
    health: str
    counts: Mapping[str, int]

    @property
    def key(self) -> str:
        return self.summary.file.file_path

    @property
    def control(self) -> Control | None:
        return self.summary.control

    @property
    def paused(self) -> bool:
        return self.control is not None and not self.control.enabled


def health(summary: WorkflowSummary) -> str:
    """`paused`, `errors`, `warnings` or `ok`: a pause is what the user did, so it shows
    first; a file that does not load counts as an error even when its last version loads."""
    if summary.control is not None and not summary.control.enabled:
        return "paused"
    if summary.errors or summary.file.error:
        return "errors"
    if summary.warnings:
        return "warnings"
    return "ok"


def workflow_rows(
    summaries: list[WorkflowSummary], counts: Mapping[str, Mapping[str, int]]
) -> list[WorkflowRow]:
    """The overview's rows, in key order, with each file's counts (none when it ran none)."""
    return [
        WorkflowRow(summary=s, health=health(s), counts=counts.get(s.file.file_path, {}))
        for s in summaries
    ]


def health_counts(rows: list[WorkflowRow]) -> dict[str, int]:
    """How many files are in each health, for the overview's headline."""
    found = dict.fromkeys(("ok", "warnings", "errors", "paused"), 0)
    for row in rows:
        found[row.health] += 1
    return found


def phase_health(status: str, switch: Control | None) -> str:
    """A phase's badge: `paused` by its own switch, else `errors`, `warnings` or `ok`."""
    if switch is not None and not switch.enabled:
        return "paused"
    if status_has_error(status):
        return "errors"
    return "warnings" if status_has_warning(status) else "ok"


def states_in_order(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Non-zero counts in `STATE_ORDER` (a state no code knows, last)."""
    known = [(s.value, counts.get(s.value, 0)) for s in STATE_ORDER]
    unknown = sorted((k, n) for k, n in counts.items() if k not in {s.value for s in State})
    return [(name, n) for name, n in known + unknown if n]


def tone(state: str) -> str:
    try:
        return STATE_TONE[State(state)]
    except ValueError:
        return "muted"


def can_retry(record: TaskRecord) -> bool:
    """A finished record can be tried again (the store refuses one already retried)."""
    return record.state in ENDS


def can_cancel(record: TaskRecord) -> bool:
    return record.state not in ENDS
