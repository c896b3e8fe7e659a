"""What the task and control routes share: the JSON shapes of task records, transitions and
alerts (the column names of DESIGN §4, as `flowlord tasks --json` prints them), and the one
place where the domain's errors become API errors.

The records are built from `flowlord.task_commands.plain`, the CLI's own JSON form, so the API
and the CLI cannot drift apart; the models only describe that form in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, WithJsonSchema

from flowlord.state import ALERT_KINDS, Alert, StoreError, TaskRecord, Transition, UnknownRecord
from flowlord.task_commands import plain
from handlers.errors import WRITE_RESPONSES, ApiError, ErrorBody
from workflow.controls import BadReason, ControlConflict, ControlError, UnknownTarget
from workflow.state import IllegalTransition, Origin, State

MAX_REC = 2**63 - 1
"""The largest record number SQLite can hold: a bigger one is refused (422) before any read."""


def record_number(text: str) -> int | None:
    """`text` as a record number or cursor (ASCII digits, at most `MAX_REC`); None when it is
    not one: a path or query the client typed, checked before any read."""
    if text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_REC:
        return int(text)
    return None


Rfc3339 = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A time as RFC 3339 UTC text (`2024-05-01T06:00:00Z`), exactly as the CLI prints it."""

AlertKind = Literal[ALERT_KINDS]  # type: ignore[valid-type]


class TaskOut(BaseModel):
    """One task record: one attempt of one task (DESIGN §4)."""

    rec: int
    id: str
    type: str
    job: str
    info: str
    meta: str
    workflow: str
    phase: str
    attempt: int
    origin: Origin
    origin_key: str
    state: State
    result: str
    msg: str
    created: Rfc3339
    due: Rfc3339 | None
    sent: Rfc3339 | None
    started: Rfc3339 | None
    ended: Rfc3339 | None
    deadline: Rfc3339 | None
    updated: Rfc3339


class TransitionOut(BaseModel):
    """One audited move of a record; `from_state` is null for its creation."""

    rec: int
    from_state: State | None
    to_state: State
    reason: str
    actor: str
    at: Rfc3339


class AlertOut(BaseModel):
    seq: int
    at: Rfc3339
    kind: AlertKind
    workflow: str
    phase: str
    rec: int | None
    message: str
    notified: Rfc3339 | None


def task_out(record: TaskRecord) -> TaskOut:
    return TaskOut.model_validate(plain(record))


def transition_out(transition: Transition) -> TransitionOut:
    return TransitionOut.model_validate(plain(transition))


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(plain(alert))


def conflict(meaning: str) -> dict[int | str, dict[str, object]]:
    """The error statuses of a write that the state can refuse (409: `meaning`), for the
    OpenAPI document."""
    return {**WRITE_RESPONSES, 409: {"model": ErrorBody, "description": meaning}}


DOMAIN_ERRORS = (StoreError, IllegalTransition, ControlError)
"""What the operations raise for a request they refuse; nothing was written then."""


def api_error(err: Exception) -> ApiError:
    """The status a refused operation answers: what is not there is a 404, a reason that is
    not one is a 422, and a change the state does not allow (a record not finished, retried
    already, or finished; a switch already as asked) is a 409."""
    match err:
        case UnknownRecord():
            return ApiError(404, str(err), field="rec")
        case UnknownTarget():
            return ApiError(404, str(err), field="file")
        case BadReason():
            return ApiError(422, str(err), field="reason")
        case ControlConflict() | IllegalTransition() | StoreError():
            return ApiError(409, str(err))
    return ApiError(422, str(err))


class DomainRoute(APIRoute):
    """A route whose domain errors are translated by `api_error`: give it to a router as
    `route_class`, and no route function catches them itself."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                return await handler(request)
            except DOMAIN_ERRORS as err:
                raise api_error(err) from None

        return translated
