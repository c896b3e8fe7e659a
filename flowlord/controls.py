"""Pause and resume a workflow file or one of its phases (DESIGN §5). The CLI and the API
share these; neither needs the leader lease.

A pause only writes the switch: the leader holds what the workflow would send from then on
(it reads the switches in each transaction that makes or sends records). A resume writes the
switch and, in the same transaction, releases the held records in creation order (queued, so
the leader sends them at its next turn) or discards them (cancelled).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from cache.catalog import Catalog
from flowlord.state import TaskFilter, TaskStore
from workflow.controls import (
    WHOLE_FILE,
    BadReason,
    Control,
    ControlEvent,
    UnknownTarget,
    check_pause,
    check_resume,
    describe,
)
from workflow.state import State

PhasesOf = Callable[[str], list[str] | None]
"""The phase names of a workflow file, None for a file the database does not know."""
KNOWN_SHOWN = 10
EVENTS_SHOWN = 20
HELD_COUNTED = 1_000_000


@dataclass(frozen=True, slots=True)
class Switch:
    """A control with the records its pause holds (0 while it runs)."""

    control: Control
    held: int


@dataclass(frozen=True, slots=True)
class Overview:
    """Every switch ever set, paused first, and the latest changes, newest first: what
    `flowlord controls` and `GET /api/controls` show."""

    switches: list[Switch]
    events: list[ControlEvent]


@contextmanager
def known_phases(db_path: str | os.PathLike[str]) -> Iterator[PhasesOf]:
    """`phases_of` as the database knows the workflow files (what `flowlord run` loaded), for
    a pause or resume made beside it: no workflow folder is read."""
    catalog = Catalog(db_path)
    try:
        yield catalog.phases_of
    finally:
        catalog.close()


def overview(store: TaskStore, *, events: int = EVENTS_SHOWN) -> Overview:
    """The switches with the records each pause holds: a workflow's pause counts every held
    record of the file, a phase's those of the phase."""
    switches = store.controls()
    latest = store.control_events(limit=events)
    held_records = store.tasks(TaskFilter(state=State.HELD, limit=HELD_COUNTED))
    held = Counter((r.workflow, r.phase) for r in held_records)
    held_by_file = Counter(r.workflow for r in held_records)
    switches.sort(key=lambda c: (c.enabled, c.workflow, c.phase))
    counted = []
    for control in switches:
        count = held[(control.workflow, control.phase)] if control.phase else \
            held_by_file[control.workflow]  # fmt: skip
        counted.append(Switch(control, 0 if control.enabled else count))
    return Overview(counted, latest)


def pause(
    store: TaskStore,
    phases_of: PhasesOf,
    workflow: str,
    phase: str = WHOLE_FILE,
    *,
    reason: str,
    actor: str,
) -> ControlEvent:
    """Pause a workflow file (or one phase). Nothing is written when it raises a
    `ControlError`: `BadReason` (none, or not one printable line), `UnknownTarget` (an
    unknown workflow or phase), `ControlConflict` (paused already)."""
    if not reason.strip():
        raise BadReason(f"pausing {describe(workflow, phase)} needs a reason")
    _check_reason(reason, "pause", workflow, phase)
    _check_known(phases_of, workflow, phase)
    with store.transaction() as tx:
        check_pause(tx.control(workflow, phase), workflow, phase)
        return tx.set_control(workflow, phase, enabled=False, reason=reason, actor=actor)


def resume(
    store: TaskStore,
    phases_of: PhasesOf,
    workflow: str,
    phase: str = WHOLE_FILE,
    *,
    actor: str,
    discard_held: bool = False,
    reason: str = "",
) -> ControlEvent:
    """Resume a paused workflow file (or phase) and release its held records, oldest first,
    to be sent; with `discard_held`, cancel them instead. A record still held by another
    pause (its phase's, or its workflow's) stays held. `ControlConflict` when it is not
    paused, `UnknownTarget` when it never was and is unknown, `BadReason` for a reason that
    is not one printable line.

    A workflow whose file is gone can still be resumed (its held records released)."""
    _check_reason(reason, "resume", workflow, phase)
    with store.transaction() as tx:
        current = tx.control(workflow, phase)
        if current is None:
            _check_known(phases_of, workflow, phase)
        check_resume(current, workflow, phase)
        still = store.paused().without(workflow, phase)
        to = State.CANCELLED if discard_held else State.QUEUED
        why = f"{'discarded' if discard_held else 'released'}: {describe(workflow, phase)} " \
              f"resumed by {actor}"  # fmt: skip
        moved = 0
        for record in tx.held(workflow, phase or None):
            if still.holds(record.workflow, record.phase) is None:
                tx.move(record.rec, to, actor=actor, reason=why, current=record)
                moved += 1
        return tx.set_control(
            workflow, phase, enabled=True, reason=reason, actor=actor,
            released=0 if discard_held else moved, discarded=moved if discard_held else 0,
        )  # fmt: skip


def pause_every(
    store: TaskStore, workflows: Iterable[str], *, reason: str, actor: str
) -> list[ControlEvent]:
    """Pause each of these workflow files that is not paused (`run --start-paused`), in one
    transaction; returns the changes made."""
    events = []
    with store.transaction() as tx:
        for workflow in workflows:
            current = tx.control(workflow, WHOLE_FILE)
            if current is None or current.enabled:
                events.append(
                    tx.set_control(workflow, WHOLE_FILE, enabled=False, reason=reason, actor=actor)
                )
    return events


def see_new(
    store: TaskStore, workflows: Sequence[str], *, pause: bool, actor: str, leader: str
) -> list[ControlEvent]:
    """Note the workflow files a taskmaster schedules; with `pause` (`paused_at_creation`),
    pause each it never saw before and nobody has switched yet. A file once seen is never
    paused this way again, so a file a person resumed stays resumed, and turning the setting
    on for a database that ran for months pauses only files added from then on."""
    events = []
    with store.transaction(leader=leader) as tx:
        for workflow in tx.first_seen(workflows):
            if pause and tx.control(workflow, WHOLE_FILE) is None:
                events.append(tx.set_control(workflow, WHOLE_FILE, enabled=False,
                                             reason="paused at creation", actor=actor))  # fmt: skip
    return events


def _check_reason(reason: str, change: str, workflow: str, phase: str) -> None:
    """A reason is kept in the audit and shown in tables: one line of printable text."""
    if not reason.isprintable():
        raise BadReason(f"the reason to {change} {describe(workflow, phase)} must be one line "
                        f"of printable text, got {reason!r}")  # fmt: skip


def _check_known(phases_of: PhasesOf, workflow: str, phase: str) -> None:
    phases = phases_of(workflow)
    if phases is None:
        raise UnknownTarget(f"unknown workflow {workflow!r}: no workflow file has this key")
    if phase and phase not in phases:
        shown = ", ".join(phases[:KNOWN_SHOWN]) + (", ..." if len(phases) > KNOWN_SHOWN else "")
        raise UnknownTarget(
            f"workflow {workflow!r} has no phase {phase!r} (its phases: {shown or 'none'})"
        )
