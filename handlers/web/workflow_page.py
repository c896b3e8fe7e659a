"""`/web/workflows/{file}`: one workflow file — its health and switch, its dependency graph,
its phases with statuses and next fires, its recent tasks, its stored versions with diffs —
and restoring a version.

The reads are the API's: `workflow_detail` (`/api/workflows/{file}`), `upcoming` (the fire
times of `/api/schedule`), `cache.versions` and `unified_diff` (`…/versions`, `…/diff`); a
restore is `handlers.files.save`, the same checks and write as `POST …/restore`.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from cache import SQLiteCache, writer
from cache.sqlite import FileVersion
from flowlord.listing import workflow_detail
from flowlord.state import TaskFilter
from flowlord.upcoming import upcoming
from handlers.errors import ApiError
from handlers.files import save
from handlers.keys import checked_key
from handlers.web.base import Form, Page, PageError, Web
from handlers.web.graph import workflow_graph
from handlers.web.views import health, phase_health
from workflow.diff import unified_diff

router = APIRouter(include_in_schema=False)

TASKS_SHOWN = 15


@router.get("/web/workflows/{file:path}")
def workflow(file: str, page: Page, diff: str = "", done: str = "") -> Response:
    """The page of one file; `diff` names a stored version to compare with the current one."""
    return workflow_page(page, checked_key(page.ctx, file), diff=diff, notice=done)


def workflow_page(
    page: Web, key: str, *, diff: str = "", notice: str = "",
    errors: dict[str, str] | None = None, status: int = 200,
) -> Response:  # fmt: skip
    ctx = page.ctx
    controls = ctx.store.controls()
    detail = workflow_detail(ctx.cache, controls, key)
    versions = ctx.cache.versions(key)
    if detail is None and not versions:
        raise PageError(404, f"There is no workflow file {key!r}.")
    fires = {row.task: row for row in upcoming(detail.phases if detail else [], ctx.zone,
                                               page.clock.now)}  # fmt: skip
    phases = detail.phases if detail else []
    switches = detail.switches if detail else {}
    paused = {task for task, c in switches.items() if not c.enabled}
    whole = detail.summary.control if detail else None
    if whole is not None and not whole.enabled:
        paused = {p.task for p in phases}
    graph = workflow_graph(
        phases, next_fires={task: row.next for task, row in fires.items()}, zone=ctx.zone,
        paused=paused, href=lambda task: f"#phase-{task}",
    )  # fmt: skip
    current = detail.summary.file.file_hash if detail else ""
    return page.page(
        "workflow.html", status=status, key=key, detail=detail, phases=phases, fires=fires,
        switches=switches, whole=whole, graph=graph, versions=versions, current=current,
        health=health(detail.summary) if detail else "errors", phase_health=phase_health,
        comparison=_comparison(ctx.cache, key, diff, current, versions) if diff else None,
        tasks=ctx.store.tasks(TaskFilter(workflow=key, limit=TASKS_SHOWN)),
        notice=notice, errors=errors or {},
    )  # fmt: skip


@router.post("/web/workflows/{file:path}/restore")
def restore(file: str, post: Form) -> Response:
    """Write a stored version back, through the same checks as an upload. `if_match` (the
    hash the page showed) refuses a restore over a file that changed since."""
    page, ctx = post.web, post.web.ctx
    key = checked_key(ctx, file)
    chosen = post.text("hash")
    data = ctx.cache.version(key, chosen)
    if data is None:
        raise PageError(404, f"{key} has no stored version {chosen[:12]!r}.",
                        back=f"/web/workflows/{key}", back_label=f"Back to {key}")  # fmt: skip
    try:
        save(ctx, key, data, post.text("if_match") or None)
    except writer.InvalidContent as err:
        return workflow_page(page, key, errors={"restore": str(err)}, status=422)
    except ApiError as err:
        return workflow_page(page, key, errors={"restore": err.message}, status=err.status)
    return page.done(f"/web/workflows/{key}", f"Restored version {chosen[:12]} of {key}.")


def _comparison(
    cache: SQLiteCache, key: str, old_hash: str, current: str, versions: list[FileVersion]
) -> dict[str, str]:
    """The diff from version `old_hash` to the current one (or the newest, for a file that
    is gone); a hash the file has no version of is a 404 page."""
    new_hash = current or (versions[0].file_hash if versions else "")
    old, new = cache.version(key, old_hash), cache.version(key, new_hash)
    if old is None or new is None:
        raise PageError(404, f"{key} has no stored version {old_hash[:12]!r}.",
                        back=f"/web/workflows/{key}", back_label=f"Back to {key}")  # fmt: skip
    names = {"old_name": f"{key}@{old_hash[:12]}", "new_name": f"{key}@{new_hash[:12]}"}
    text = unified_diff(old.decode("utf-8", "replace"), new.decode("utf-8", "replace"), **names)
    return {"from": old_hash, "to": new_hash, "diff": text}
