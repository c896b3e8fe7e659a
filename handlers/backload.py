"""Backloads: the Go flowlord's /backload, a dry run unless executed (DESIGN §6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Request as HttpRequest
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from flowlord.backload import Backloaded, backload
from handlers.auth import admin
from handlers.context import Ctx
from handlers.errors import WRITE_RESPONSES, ApiError, ErrorBody
from workflow.backload import FIELDS, MAX_NAME, MAX_TEXT, BackloadError, Request

router = APIRouter(tags=["backload"])

Name = Annotated[str, StringConstraints(max_length=MAX_NAME)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
MetaValues = Annotated[
    list[Text],
    BeforeValidator(
        lambda v: [v] if isinstance(v, str) else v, json_schema_input_type=Text | list[Text]
    ),
]
"""A meta key's values; one string is a list of one (Go takes both forms)."""


def _field(name: str, description: str, **options: Any) -> Any:
    """A request field under its names (ours first, then the Go flowlord's)."""
    others = ", ".join(f"`{alias}`" for alias in FIELDS[name][1:])
    return Field(
        validation_alias=AliasChoices(*FIELDS[name]),
        serialization_alias=name,
        description=f"{description} (also {others})",
        **options,
    )


class BackloadBody(BaseModel):
    """A backload request, with the Go flowlord's field names accepted too. JSON types are
    strict (`"execute": "yes"` is refused) and unknown fields are refused: a misspelt `from`
    would otherwise backload today."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", strict=True)

    task: Name = _field("task", "topic, or topic:job, of the phase to backload", min_length=1)
    job: Name = _field("job", "the phase's job", default="")
    workflow: Name = _field("workflow", "search this workflow file only", default="")
    from_: Name = _field("from", "first time: 2006-01-02, 2006-01-02T15 or RFC 3339", default="")
    to: Name = _field("to", "last time, included (default: from)", default="")
    at: Name = _field("at", "a single time, instead of from and to", default="")
    by: Name = _field("by", "step: day (default), hour or month", default="")
    meta: dict[Name, MetaValues] | None = _field(
        "meta", 'meta lists, zipped by position: {"region": ["us", "eu"]}', default=None
    )
    meta_file: Name = _field("meta_file", "a meta-file in the workflow folder", default="")
    template: Text = _field("template", "the task info template (default: the phase's)",
                            default="")  # fmt: skip
    execute: bool = _field("execute", "record the tasks; else a dry run", default=False)

    @model_validator(mode="before")
    @classmethod
    def _as_go_reads_it(cls, data: Any) -> Any:
        """A `null` is "not given", as Go reads it (a Go client sends `"Meta": null`); a
        field given under two names is refused: which one was meant is a guess."""
        if not isinstance(data, dict):
            return data
        for field, names in FIELDS.items():
            given = [name for name in names if name in data]
            if len(given) > 1:
                raise ValueError(f"{field} is given twice, as {' and '.join(given)}")
        return {key: value for key, value in data.items() if value is not None}

    def request(self) -> Request:
        values = self.model_dump(exclude={"from_"})
        return Request(from_=self.from_, **values)


class TaskJson(BaseModel):
    """A task as the bus carries it (the pcelvng/task JSON fields)."""

    type: str
    job: str
    info: str
    meta: str
    id: str
    created: str


class BackloadReply(BaseModel):
    """The Go flowlord's response, with lower-case keys: `status` ("DRY RUN ONLY: …" or
    "Executed: …", then what was assumed), `count`, `tasks`; once executed, `records` (the
    `rec` of each task record, in task order)."""

    status: str
    count: int
    tasks: list[TaskJson]
    records: list[int] | None = None

    @classmethod
    def of(cls, done: Backloaded) -> BackloadReply:
        tasks = done.tasks
        return cls(
            status=done.status,
            count=len(tasks),
            tasks=[
                TaskJson(
                    type=t.type, job=t.job, info=t.info, meta=t.meta, id=t.id, created=t.created
                )
                for t in tasks
            ],
            records=[record.rec for record in done.records] if done.executed else None,
        )


@router.post(
    "/api/backload",
    response_model=BackloadReply,
    response_model_exclude_none=True,
    responses={**WRITE_RESPONSES, 404: {"model": ErrorBody, "description": "no such task"}},
)
def post_backload(body: BackloadBody, http: HttpRequest, ctx: Ctx) -> BackloadReply:
    """The tasks of one phase over a time range (the Go flowlord's `/backload`). A dry run
    unless `execute` is true; executing needs the admin token and records each task as
    `queued` (`held` while its workflow is paused), for the leader to send."""
    actor = admin(http) if body.execute else ""
    try:
        done = backload(
            body.request(), cache=ctx.cache, store=ctx.store, folder=ctx.folder, now=ctx.now(),
            zone=ctx.zone, max_tasks=ctx.max_tasks, actor=actor,
        )  # fmt: skip
    except BackloadError as err:
        raise ApiError(err.status, str(err), field=err.field) from None
    return BackloadReply.of(done)
