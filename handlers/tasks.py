"""Task records, runs, alerts and held tasks; retry and cancel (DESIGN §6).

The reads are the store's, as `flowlord tasks | task | alerts` make them; retry and cancel
are `flowlord.operations`, as `flowlord retry | cancel` call them. A filter left blank
(`?state=&type=`, as an HTML form sends it) is no filter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from flowlord import operations
from flowlord.state import TaskFilter, TaskRecord
from flowlord.task_commands import plain, point_in_time
from handlers.auth import Admin
from handlers.context import ApiContext, Ctx
from handlers.errors import ERROR_RESPONSES, ApiError, not_found
from handlers.records import (
    MAX_REC,
    AlertKind,
    AlertOut,
    DomainRoute,
    TaskOut,
    TransitionOut,
    alert_out,
    conflict,
    record_number,
    task_out,
    transition_out,
)
from handlers.responses import model_json, plain_json
from workflow.state import State

router = APIRouter(tags=["tasks"], route_class=DomainRoute)

MAX_LIMIT = 1000


def _blank_is_none(value: object) -> object:
    return value or None


Blank = BeforeValidator(_blank_is_none)
Rec = Annotated[int, Path(ge=1, le=MAX_REC, description="a record number")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many")]
Filter = Annotated[str | None, Query(), Blank]
When = Annotated[
    str | None,
    Query(description="an RFC 3339 time, or a duration back from now (`24h`)"),
    Blank,
]
Cursor = Annotated[
    str | None,
    Query(description="the `next_cursor` of the page before: continue after it"),
    Blank,
]


class TaskPage(BaseModel):
    """Records newest first; `next_cursor` is null on the last page."""

    tasks: list[TaskOut]
    next_cursor: str | None


class TaskDetail(TaskOut):
    """A record with every move it made, oldest first."""

    transitions: list[TransitionOut]


class Run(BaseModel):
    """Every record of one run id (parent, children, retries), oldest first."""

    id: str
    tasks: list[TaskOut]


class Alerts(BaseModel):
    """Alert records, newest first."""

    alerts: list[AlertOut]


class Cancel(BaseModel):
    """Why the record is cancelled, kept in its transition."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000)

    @field_validator("reason")
    @classmethod
    def _one_line(cls, reason: str) -> str:
        if not reason.isprintable():
            raise ValueError("must be one line of printable text")
        return reason


@router.get(
    "/api/tasks",
    summary="Task records, newest first",
    response_model=TaskPage,
    responses=ERROR_RESPONSES,
)
def tasks(
    ctx: Ctx,
    state: Annotated[State | None, Query(), Blank] = None,
    task_type: Annotated[str | None, Query(alias="type"), Blank] = None,
    job: Filter = None,
    workflow: Filter = None,
    run_id: Annotated[str | None, Query(alias="id"), Blank] = None,
    since: When = None,
    until: When = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Task records, newest first, filtered (all filters ANDed); `since` is inclusive and
    `until` exclusive, on `created`. Follow `next_cursor` for the next page."""
    where = TaskFilter(
        state=state, type=task_type, job=job, workflow=workflow, id=run_id,
        since=_optional(ctx, "since", since), until=_optional(ctx, "until", until),
        limit=limit + 1, before=_cursor(cursor),
    )  # fmt: skip
    return _page(ctx.store.tasks(where), limit)


@router.get(
    "/api/held", summary="Held task records", response_model=TaskPage, responses=ERROR_RESPONSES
)
def held(ctx: Ctx, workflow: Filter = None, limit: Limit = 100, cursor: Cursor = None) -> Response:
    """Held records (of one workflow file), newest first: what a resume would release."""
    where = TaskFilter(state=State.HELD, workflow=workflow, limit=limit + 1,
                       before=_cursor(cursor))  # fmt: skip
    return _page(ctx.store.tasks(where), limit)


@router.get(
    "/api/tasks/{rec}",
    summary="A task record with its transitions",
    response_model=TaskDetail,
    responses=ERROR_RESPONSES,
)
def task(ctx: Ctx, rec: Rec) -> TaskDetail:
    """One record with its transitions; 404 for a record that does not exist."""
    record = ctx.store.get(rec)
    moves = [transition_out(t) for t in ctx.store.transitions(rec)]
    return TaskDetail(**task_out(record).model_dump(), transitions=moves)


@router.get(
    "/api/runs/{id:path}",
    summary="Every record of one run",
    response_model=Run,
    responses=ERROR_RESPONSES,
)
def run(ctx: Ctx, run_id: Annotated[str, Path(alias="id")]) -> Run:
    """Every record of one run id, oldest first; 404 when it has none."""
    records = ctx.store.run(run_id)
    if not records:
        raise not_found(f"run {run_id!r}", field="id")
    return Run(id=run_id, tasks=[task_out(r) for r in records])


@router.post(
    "/api/tasks/{rec}/retry", summary="Retry a finished record", status_code=201,
    response_model=TaskOut,
    responses=conflict("the record is not finished, or was retried already"),
)  # fmt: skip
def retry(ctx: Ctx, rec: Rec, actor: Admin) -> TaskOut:
    """A new attempt (origin `manual`) of a finished record, queued: the leader sends it at
    its next turn. Returns the new record."""
    return task_out(operations.retry(ctx.store, rec, actor=actor))


@router.post(
    "/api/tasks/{rec}/cancel", summary="Cancel an unfinished record", response_model=TaskOut,
    responses=conflict("the record is finished already"),
)  # fmt: skip
def cancel(
    ctx: Ctx, rec: Rec, actor: Admin, body: Annotated[Cancel | None, Body()] = None
) -> TaskOut:
    """Cancel a record that is not finished: it is never sent (or, sent, its done changes
    nothing). The body is optional. Returns the record as cancelled."""
    reason = body.reason if body else ""
    return task_out(operations.cancel(ctx.store, rec, actor=actor, reason=reason))


@router.get(
    "/api/alerts",
    summary="Alert records, newest first",
    response_model=Alerts,
    responses=ERROR_RESPONSES,
)
def alerts(
    ctx: Ctx,
    since: When = None,
    kind: Annotated[AlertKind | None, Query(), Blank] = None,
    limit: Limit = 100,
) -> Response:
    """Alert records, newest first, from `since` (inclusive), of one kind."""
    found = ctx.store.alerts(since=_optional(ctx, "since", since), kind=kind, limit=limit)
    return model_json(Alerts(alerts=[alert_out(a) for a in found]))


def moment(ctx: ApiContext, name: str, text: str) -> datetime:
    """`since`/`until` as the CLI reads them, from the API's clock; a 422 naming `name`
    when `text` does not read."""
    try:
        return point_in_time(text, now=ctx.now())
    except ValueError as err:
        raise ApiError(422, f"{name}: {err}", field=name) from None


def _optional(ctx: ApiContext, name: str, text: str | None) -> datetime | None:
    return moment(ctx, name, text) if text is not None else None


def _cursor(text: str | None) -> int | None:
    """A cursor is the last record number of the page before (opaque to clients)."""
    if text is None:
        return None
    number = record_number(text)
    if number is None:
        raise ApiError(422, f"cursor: {text!r} is not a cursor this API gave", field="cursor")
    return number


def _page(records: list[TaskRecord], limit: int) -> Response:
    """The first `limit` of `records` (read one more than asked, to know if more follow), as
    a `TaskPage` of the CLI's JSON records."""
    more = len(records) > limit
    shown = records[:limit]
    cursor = str(shown[-1].rec) if more else None
    return plain_json({"tasks": [plain(r) for r in shown], "next_cursor": cursor})
