"""Workflow switches (pause, resume) and their audit; refresh now (DESIGN §6).

A pause or resume is `flowlord.controls`, as `flowlord pause | resume` call it, with the
workflow and phase names checked against what the database knows (`known_phases`, the CLI's
check too); `GET /api/controls` is what `flowlord controls --json` prints.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationInfo, field_validator

from flowlord import controls
from flowlord.task_commands import plain
from handlers.auth import Admin
from handlers.context import Ctx
from handlers.errors import ERROR_RESPONSES, WRITE_RESPONSES
from handlers.keys import checked_key
from handlers.records import DomainRoute, Rfc3339, conflict
from workflow.controls import ControlEvent

router = APIRouter(tags=["controls"], route_class=DomainRoute)

MAX_LIMIT = 1000


class ControlOut(BaseModel):
    """The switch of a workflow file (`phase` empty) or one phase, and how many records its
    pause holds (0 while it runs)."""

    workflow: str
    phase: str
    enabled: bool
    reason: str
    updated_by: str
    updated_at: Rfc3339
    held: int


class ControlEventOut(BaseModel):
    """One audited change: `from_enabled` is null for a switch's first change; a resume
    counts the held records it released or discarded."""

    seq: int
    at: Rfc3339
    workflow: str
    phase: str
    actor: str
    from_enabled: bool | None
    to_enabled: bool
    reason: str
    released: int
    discarded: int


class Controls(BaseModel):
    """Every switch ever set, paused first, and the latest changes, newest first."""

    controls: list[ControlOut]
    events: list[ControlEventOut]


class ControlEvents(BaseModel):
    """Changes of the switches, newest first."""

    events: list[ControlEventOut]


class ControlChange(BaseModel):
    """`enabled: false` pauses (a `reason` is required), `enabled: true` resumes, releasing
    the held records or, with `discard_held`, cancelling them. `phase` names one phase;
    empty or absent, the whole file."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool
    reason: str = ""
    phase: str = ""
    discard_held: StrictBool = False

    @field_validator("discard_held")
    @classmethod
    def _on_resume_only(cls, discard: bool, info: ValidationInfo) -> bool:
        if discard and info.data.get("enabled") is False:
            raise ValueError("applies to a resume (enabled: true) only")
        return discard


class Refreshed(BaseModel):
    """The keys whose phases changed (removed ones prefixed `-`), and the keys that failed
    to load, with why."""

    changed: list[str]
    errors: dict[str, str]


@router.get(
    "/api/controls",
    summary="The workflow switches and held counts",
    response_model=Controls,
    responses=ERROR_RESPONSES,
)
def listing(ctx: Ctx) -> Controls:
    """The switches with their held counts and the latest changes, as `flowlord controls
    --json` prints them."""
    shown = controls.overview(ctx.store)
    return Controls(
        controls=[ControlOut(**plain(s.control), held=s.held) for s in shown.switches],
        events=[_event_out(e) for e in shown.events],
    )


@router.get(
    "/api/controls/events",
    summary="The audit of the switches",
    response_model=ControlEvents,
    responses=ERROR_RESPONSES,
)
def events(
    ctx: Ctx,
    workflow: Annotated[str | None, Query(description="one workflow file's key")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> ControlEvents:
    """The audit of the switches (of one workflow file), newest first."""
    found = ctx.store.control_events(workflow=workflow or None, limit=limit)
    return ControlEvents(events=[_event_out(e) for e in found])


@router.put(
    "/api/controls/{file:path}", summary="Pause or resume a workflow file or phase",
    response_model=ControlEventOut,
    responses=conflict("pausing what is paused, or resuming what is not"),
)  # fmt: skip
def change(
    ctx: Ctx, file: str, body: Annotated[ControlChange, Body()], actor: Admin
) -> ControlEventOut:
    """Pause or resume a workflow file (or one phase); returns the change as audited. An
    unknown workflow or phase is a 404 (a paused one that is gone may still be resumed)."""
    key = checked_key(ctx, file)
    with controls.known_phases(ctx.db_path) as phases_of:
        if body.enabled:
            event = controls.resume(ctx.store, phases_of, key, body.phase, actor=actor,
                                    discard_held=body.discard_held, reason=body.reason)  # fmt: skip
        else:
            event = controls.pause(ctx.store, phases_of, key, body.phase, reason=body.reason,
                                   actor=actor)  # fmt: skip
    return _event_out(event)


@router.post(
    "/api/refresh",
    summary="Reload the workflow files now",
    response_model=Refreshed,
    responses=WRITE_RESPONSES,
)
def refresh(ctx: Ctx, actor: Admin) -> Refreshed:
    """Read every workflow file again now, as a watch event would, and reschedule what
    changed. A file that fails to load is named in `errors`; the others still load."""
    done = ctx.refresh(None)
    return Refreshed(changed=done.changed, errors=done.errors)


def _event_out(event: ControlEvent) -> ControlEventOut:
    return ControlEventOut.model_validate(plain(event))
