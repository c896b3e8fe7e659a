"""`/web/`: every workflow at a glance (health, switch, tasks of the last day, the latest
alerts), and the switch itself: pausing or resuming a workflow file or one phase.

The reads are the API's (`workflow_summaries` as `/api/workflows`, `store.counts` and
`store.stats` as `/api/stats`, `store.alerts` as `/api/alerts`); a switch is
`flowlord.controls.pause | resume`, as `PUT /api/controls/{file}` calls them.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from starlette.responses import Response

from flowlord import controls
from flowlord.listing import workflow_summaries
from handlers.keys import checked_key
from handlers.web.base import Form, Page, PageError, Web
from handlers.web.views import health_counts, states_in_order, workflow_rows
from handlers.web.workflow_page import workflow_page
from workflow.controls import ControlError, UnknownTarget, describe

router = APIRouter(include_in_schema=False)

WINDOW = timedelta(hours=24)
"""The task counts of the overview cover the records created in the last day."""
ALERTS_SHOWN = 8


@router.get("/web/")
def overview(page: Page, done: str = "") -> Response:
    return overview_page(page, notice=done)


def overview_page(
    page: Web, *, notice: str = "", errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    ctx = page.ctx
    switches = controls.overview(ctx.store).switches
    rows = workflow_rows(
        workflow_summaries(ctx.cache, [shown.control for shown in switches]),
        ctx.store.counts(since=page.clock.now - WINDOW),
    )
    stats = ctx.store.stats()
    return page.page(
        "overview.html", status=status, rows=rows, healths=health_counts(rows),
        totals=states_in_order(stats.states), states_in_order=states_in_order,
        alerts=ctx.store.alerts(limit=ALERTS_SHOWN), held=_held(switches),
        notice=notice, errors=errors or {},
    )  # fmt: skip


@router.post("/web/workflows/{file:path}/switch")
def switch(file: str, post: Form) -> Response:
    """Pause (a reason is required) or resume a workflow file, or one phase with `phase`.
    A refused change shows the page again with the reason next to the field."""
    page, ctx = post.web, post.web.ctx
    key = checked_key(ctx, file)
    phase = post.text("phase")
    if post.text("enabled") not in ("true", "false"):
        raise PageError(400, "The switch must be sent as enabled=true or enabled=false.")
    pausing = post.text("enabled") == "false"
    reason = post.text("reason").strip()
    try:
        with controls.known_phases(ctx.db_path) as phases_of:
            if pausing:
                controls.pause(ctx.store, phases_of, key, phase, reason=reason, actor=page.actor)
            else:
                controls.resume(ctx.store, phases_of, key, phase, actor=page.actor,
                                discard_held=post.text("discard_held") == "on")  # fmt: skip
    except UnknownTarget as err:
        raise PageError(404, str(err)) from None
    except ControlError as err:
        errors = {f"switch:{key}:{phase}": str(err)}
        if post.text("back").startswith("/web/workflows/"):
            return workflow_page(page, key, errors=errors, status=422)
        return overview_page(page, errors=errors, status=422)
    what = describe(key, phase)
    back = f"/web/workflows/{key}" if post.text("back").startswith("/web/workflows/") else "/web/"
    return page.done(back, f"{'Paused' if pausing else 'Resumed'} {what}.")


def _held(switches: list[controls.Switch]) -> dict[str, int]:
    """Held records by workflow file, from the switches' counts (as `/api/controls`)."""
    found: dict[str, int] = {}
    for shown in switches:
        workflow = shown.control.workflow
        found[workflow] = found.get(workflow, 0) + shown.held
    return found
