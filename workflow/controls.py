"""Workflow controls (DESIGN §5): switches per workflow file and per phase, and what they hold.

A control with `phase == ""` covers a whole workflow file. A task of a paused workflow or phase
is not sent: its record is `held` until a resume releases it (or discards it). Pure values and
decisions; the stores keep the rows and the taskmaster acts on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

WHOLE_FILE = ""
"""The `phase` of a control that covers every phase of its workflow file."""


class ControlError(ValueError):
    """A pause or resume that cannot be done: an unknown workflow or phase, a pause of what is
    paused, a resume of what is not. Names the workflow and phase; nothing was written. The
    subclasses say which, so the API can answer 404, 409 or 422 (the CLI exits 2 for all)."""


class UnknownTarget(ControlError):
    """The workflow file or phase to pause or resume is not known."""


class ControlConflict(ControlError):
    """A pause of what is paused, or a resume of what is not: the switch is not as expected."""


class BadReason(ControlError):
    """The reason given is missing (a pause needs one) or not one line of printable text."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Control:
    """The switch of one workflow file (`phase` empty) or one of its phases."""

    workflow: str
    phase: str = WHOLE_FILE
    enabled: bool
    reason: str = ""
    updated_by: str = ""
    updated_at: datetime

    @property
    def target(self) -> str:
        return describe(self.workflow, self.phase)


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlEvent:
    """One audited change of a control; `from_enabled` is None for its first change."""

    seq: int
    at: datetime
    workflow: str
    phase: str = WHOLE_FILE
    actor: str
    from_enabled: bool | None
    to_enabled: bool
    reason: str = ""
    released: int = 0
    discarded: int = 0


def describe(workflow: str, phase: str) -> str:
    """How messages name a control's target: `w.toml`, or `w.toml: phase`."""
    return f"{workflow}: {phase}" if phase else workflow


class Paused:
    """The controls that are off, looked up by the (workflow, phase) of a task record."""

    __slots__ = ("_by_key",)

    def __init__(self, controls: Iterable[Control] = ()) -> None:
        self._by_key = {(c.workflow, c.phase): c for c in controls if not c.enabled}

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def holds(self, workflow: str, phase: str) -> Control | None:
        """The pause that keeps a task of this phase from being sent: its workflow's, else
        its phase's; None when it may be sent."""
        by_key = self._by_key
        if not by_key:
            return None
        return by_key.get((workflow, WHOLE_FILE)) or by_key.get((workflow, phase))

    def without(self, workflow: str, phase: str) -> Paused:
        """These pauses less one: what still holds once it is resumed."""
        kept = Paused()
        kept._by_key = {k: c for k, c in self._by_key.items() if k != (workflow, phase)}
        return kept

    def controls(self) -> list[Control]:
        return list(self._by_key.values())


NOTHING_PAUSED = Paused()


def held_reason(control: Control) -> str:
    """Why a record is held, for its transition: the pause, who made it and why."""
    why = f": {control.reason}" if control.reason else ""
    return f"held: {control.target} paused by {control.updated_by or 'someone'}{why}"


def check_pause(current: Control | None, workflow: str, phase: str) -> None:
    """Refuse a pause of what is paused already (its reason would be lost unseen)."""
    if current is not None and not current.enabled:
        raise ControlConflict(
            f"{describe(workflow, phase)} is already paused (by {current.updated_by or '?'} at "
            f"{current.updated_at.isoformat()}: {current.reason or 'no reason given'})"
        )


def check_resume(current: Control | None, workflow: str, phase: str) -> None:
    """Refuse a resume of what is not paused."""
    if current is None or current.enabled:
        raise ControlConflict(f"{describe(workflow, phase)} is not paused")
