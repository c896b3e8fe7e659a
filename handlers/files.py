"""Uploading, deleting and restoring workflow files, and their version history (DESIGN §6).

A write is validated before anything touches the disk: bytes that would not load, or that
load with an error-level phase status, are refused (422) and nothing is written. A good file
is written atomically (`cache.writer`), then the live cache refreshes that key, so the
taskmaster reschedules it at once and the new version enters `workflow_versions`.

`If-Match` takes the sha256 of the file now on disk (the `hash` these routes return), or `*`
for "the file must exist"; a mismatch is a 409. Version contents are served as JSON
(`{"file", "hash", "loaded_at", "size", "content"}`), like every other answer of the API.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cache import writer
from handlers.auth import Admin
from handlers.context import ApiContext, Ctx
from handlers.errors import ERROR_RESPONSES, WRITE_RESPONSES, ApiError, ErrorBody, not_found
from handlers.keys import checked_key
from workflow import Workflow
from workflow.diff import unified_diff

log = logging.getLogger("flowlord.api")
router = APIRouter(tags=["files"])


class PhaseStatus(BaseModel):
    """A phase of the file and its validation status ("" when fine)."""

    task: str
    status: str


class Written(BaseModel):
    """A file written: its new hash, its phases' statuses, whether it was new (then 201), and
    what the refresh of the live cache changed or could not load."""

    file: str
    hash: str
    created: bool
    phases: list[PhaseStatus]
    warnings: list[str]
    changed: list[str]
    errors: dict[str, str]


class Rejected(ErrorBody):
    """A 422 for content that does not validate: the error, and each phase's status (none when
    the file does not parse at all)."""

    phases: list[PhaseStatus] = Field(default_factory=list)


class Deleted(BaseModel):
    """A file removed, and what the refresh of the live cache changed."""

    file: str
    changed: list[str]
    errors: dict[str, str]


class VersionInfo(BaseModel):
    """One stored version; `current` marks the one the cache has loaded now."""

    hash: str
    loaded_at: datetime
    size: int
    current: bool


class History(BaseModel):
    """A file's stored versions, newest first (the last 50), and its loaded hash if any."""

    file: str
    current: str | None
    versions: list[VersionInfo]


class VersionContent(BaseModel):
    """The bytes of one version, as text (every stored version parsed, so it is UTF-8)."""

    file: str
    hash: str
    loaded_at: datetime
    size: int
    content: str


class Diff(BaseModel):
    """A unified diff from one version to another ("" when they are the same)."""

    model_config = ConfigDict(populate_by_name=True)

    file: str
    from_: str = Field(alias="from")
    to: str
    diff: str


class RestoreRequest(BaseModel):
    """Which stored version to write back."""

    hash: str


CONFLICT = {409: {"model": ErrorBody, "description": "If-Match does not hold, or the path "
                  "holds something that cannot be replaced"}}  # fmt: skip
SAVE_RESPONSES: dict[int | str, dict[str, object]] = {
    **WRITE_RESPONSES,
    **CONFLICT,
    201: {"model": Written, "description": "the file was created"},
    422: {"model": Rejected, "description": "the content does not validate; nothing written"},
}
TOML_BODY = {
    "requestBody": {
        "required": True,
        "description": "the workflow file, TOML (UTF-8), sent as it is: any content type",
        "content": {
            "application/toml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
IfMatch = Annotated[
    str | None,
    Header(description="the sha256 the file on disk must have now, or `*`: it must exist"),
]


@router.put(
    "/api/workflows/{file:path}",
    response_model=Written,
    responses=SAVE_RESPONSES,
    openapi_extra=TOML_BODY,
    summary="Upload a workflow file (admin)",
)
async def put_workflow(
    file: str, request: Request, response: Response, ctx: Ctx, actor: Admin,
    if_match: IfMatch = None,
) -> Written | JSONResponse:  # fmt: skip
    """Validate the TOML body, write it atomically, refresh: 201 when new, 200 when replaced."""
    key = checked_key(ctx, file)
    data = await request.body()
    return await run_in_threadpool(_answer_save, ctx, key, data, if_match, response, actor, "body")


@router.post(
    "/api/workflows/{file:path}/restore",
    response_model=Written,
    responses=SAVE_RESPONSES,
    summary="Write a stored version back (admin)",
)
def restore_workflow(
    file: str, body: RestoreRequest, response: Response, ctx: Ctx, actor: Admin,
    if_match: IfMatch = None,
) -> Written | JSONResponse:  # fmt: skip
    """The version goes through the same checks as an upload: one that no longer validates
    (the validator grew stricter) is a 422."""
    key = checked_key(ctx, file)
    data = ctx.cache.version(key, body.hash)
    if data is None:
        raise not_found(f"version {body.hash!r} of {key!r}", field="hash")
    return _answer_save(ctx, key, data, if_match, response, actor, "hash")


@router.delete(
    "/api/workflows/{file:path}",
    response_model=Deleted,
    responses={**WRITE_RESPONSES, **CONFLICT},
    summary="Delete a workflow file (admin)",
)
def delete_workflow(file: str, ctx: Ctx, actor: Admin, if_match: IfMatch = None) -> Deleted:
    """Remove the file and refresh; its versions stay, so it can be restored."""
    key = checked_key(ctx, file)
    with ctx.file_writes, _refused():
        if not writer.delete(ctx.folder, key, if_match=if_match):
            raise not_found(f"workflow file {key!r}", field="file")
        refreshed = ctx.refresh([key])
    log.info("workflow %s deleted by %s", key, actor)
    return Deleted(file=key, changed=refreshed.changed, errors=refreshed.errors)


@router.get(
    "/api/workflows/{file:path}/versions",
    response_model=History,
    responses=ERROR_RESPONSES,
    summary="A file's stored versions, newest first",
)
def list_versions(file: str, ctx: Ctx) -> History:
    """The last 50 versions the cache loaded, newest first, marking the loaded one; a deleted
    file keeps its history (restore one with `…/restore`). 404 when there is neither the
    file nor any history of it."""
    key = checked_key(ctx, file)
    versions = ctx.cache.versions(key)
    loaded = ctx.cache.workflow_file(key)
    if not versions and loaded is None:
        raise not_found(f"workflow file {key!r}", field="file")
    current = loaded.file_hash if loaded and loaded.file_hash else None
    return History(
        file=key,
        current=current,
        versions=[
            VersionInfo(
                hash=v.file_hash, loaded_at=v.loaded_at, size=v.size, current=v.file_hash == current
            )
            for v in versions
        ],
    )


@router.get(
    "/api/workflows/{file:path}/versions/{hash}",
    response_model=VersionContent,
    responses=ERROR_RESPONSES,
    summary="The content of one stored version",
)
def get_version(file: str, hash: str, ctx: Ctx) -> VersionContent:
    """One version's bytes, as the JSON string `content` (each stored version loaded, so it
    is UTF-8 text); 404 for a hash this file has no version of."""
    key = checked_key(ctx, file)
    found = next((v for v in ctx.cache.versions(key) if v.file_hash == hash), None)
    data = ctx.cache.version(key, hash) if found else None
    if found is None or data is None:
        raise not_found(f"version {hash!r} of {key!r}", field="hash")
    return VersionContent(file=key, hash=hash, loaded_at=found.loaded_at, size=len(data),
                          content=_text(data))  # fmt: skip


@router.get(
    "/api/workflows/{file:path}/diff",
    response_model=Diff,
    responses=ERROR_RESPONSES,
    summary="A unified diff between two stored versions",
)
def diff_versions(
    file: str,
    ctx: Ctx,
    from_: Annotated[str, Query(alias="from", description="the older version's hash")],
    to: Annotated[str | None, Query(description="the newer one's (default: current)")] = None,
) -> Diff:
    """`diff -u` of two versions by hash; `to` defaults to the version loaded now. 404 for a
    hash this file has no version of, or with no `to` when nothing is loaded."""
    key = checked_key(ctx, file)
    to = to or _loaded_hash(ctx, key)
    if to is None:
        raise not_found(f"a current version of {key!r} (give `to`)", field="to")
    old, new = ctx.cache.version(key, from_), ctx.cache.version(key, to)
    if old is None:
        raise not_found(f"version {from_!r} of {key!r}", field="from")
    if new is None:
        raise not_found(f"version {to!r} of {key!r}", field="to")
    names = {"old_name": f"a/{key}@{from_[:12]}", "new_name": f"b/{key}@{to[:12]}"}
    return Diff(file=key, from_=from_, to=to, diff=unified_diff(_text(old), _text(new), **names))


def _answer_save(
    ctx: ApiContext, key: str, data: bytes, if_match: str | None, response: Response,
    actor: str, field: str,
) -> Written | JSONResponse:  # fmt: skip
    """The answer of an upload or a restore: 201/200 with what was written, or 422."""
    try:
        written = save(ctx, key, data, if_match)
    except writer.InvalidContent as err:
        phases = _statuses(err.workflow) if err.workflow else []
        body = Rejected(error=str(err), field=field, phases=phases)
        return JSONResponse(body.model_dump(exclude_none=True), 422)
    response.status_code = 201 if written.created else 200
    response.headers["ETag"] = f'"{written.hash}"'
    log.info("workflow %s %s by %s", key, "created" if written.created else "written", actor)
    return written


def save(ctx: ApiContext, key: str, data: bytes, if_match: str | None) -> Written:
    """Validate, then (under the write lock) check `If-Match`, write, refresh: an upload, a
    restore through the API or the dashboard. Raises `writer.InvalidContent` (nothing
    written) or the 409 `ApiError` of a failed `If-Match` or a path that cannot be written."""
    workflow = writer.validated(key, data)
    with ctx.file_writes, _refused():
        created = writer.write_atomic(ctx.folder, key, data, if_match=if_match)
        refreshed = ctx.refresh([key])
    return Written(
        file=key, hash=writer.file_hash(data), created=created, phases=_statuses(workflow),
        warnings=list(workflow.warnings), changed=refreshed.changed, errors=refreshed.errors,
    )  # fmt: skip


def _statuses(workflow: Workflow) -> list[PhaseStatus]:
    return [PhaseStatus(task=p.task, status=p.status) for p in workflow.phases]


@contextmanager
def _refused() -> Iterator[None]:
    """A write the disk refuses, or an `If-Match` that fails, is a 409."""
    try:
        yield
    except writer.PreconditionFailed as err:
        raise ApiError(409, str(err), field="If-Match") from None
    except writer.CannotWrite as err:
        raise ApiError(409, str(err), field="file") from None


def _loaded_hash(ctx: ApiContext, key: str) -> str | None:
    """The hash of the version the cache has loaded now; None when none is."""
    loaded = ctx.cache.workflow_file(key)
    return loaded.file_hash if loaded and loaded.file_hash else None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")
