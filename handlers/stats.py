"""Task counts: the figures of `flowlord stats --json`, and records by workflow file and state
over a recent window (DESIGN §4, §6), what the dashboard's overview shows.

Both are the store's reads (`stats()`, `counts()`), so the API, the CLI and the dashboard
cannot count differently.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from flowlord.task_commands import plain
from handlers.context import Ctx
from handlers.errors import ERROR_RESPONSES
from handlers.records import DomainRoute, Rfc3339
from handlers.tasks import When, moment
from workflow.task import rfc3339

router = APIRouter(tags=["tasks"], route_class=DomainRoute)

DEFAULT_SINCE = "24h"
"""The window of `workflows` when `since` is absent or blank: the last day."""

Counts = dict[str, int]


class StatsOut(BaseModel):
    """`flowlord stats --json`, with the records of each workflow file created since `since`."""

    states: Counts = Field(description="every record by state (every state, 0 when none)")
    by_age: Counts = Field(
        description="every record by age of `created`: `24h`, `7d`, `30d`, `older`"
    )
    db_bytes: int = Field(description="the size of the database file")
    alerts: int = Field(description="alert records")
    since: Rfc3339 = Field(description="the start (inclusive) of the window of `workflows`")
    workflows: dict[str, Counts] = Field(
        description="records created since `since`, by workflow file, then state (non-zero "
        'counts only); ad hoc records under `""`'
    )


@router.get(
    "/api/stats",
    summary="Task counts by state, age and workflow",
    response_model=StatsOut,
    responses=ERROR_RESPONSES,
)
def stats(ctx: Ctx, since: When = DEFAULT_SINCE) -> StatsOut:
    """The figures of `flowlord stats --json`, and the records created since `since` (an RFC
    3339 time or a duration back from now; default `24h`) by workflow file and state."""
    start = moment(ctx, "since", since or DEFAULT_SINCE)
    return StatsOut(
        **plain(ctx.store.stats()), since=rfc3339(start), workflows=ctx.store.counts(since=start)
    )
