"""`/web/about`: which flowlord this is, how long it has run, whether it leads, what it did
(the counters of `/metrics`) and what its database holds (`/api/stats`)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from starlette.responses import Response

from handlers.web.base import Page
from handlers.web.views import states_in_order

router = APIRouter(include_in_schema=False)

COUNTERS = (
    ("sent", "tasks sent"), ("done", "done messages"), ("children", "children started"),
    ("retries", "retries"), ("failed", "failed"), ("alerts", "alerts"), ("held", "held"),
    ("files", "file tasks"), ("duplicates", "duplicate dones"),
    ("bad_messages", "bad messages"), ("stuck", "stuck"), ("purged", "purged"),
)  # fmt: skip
"""The taskmaster's counters shown, with what each counts."""


@router.get("/web/about")
def about(page: Page) -> Response:
    ctx = page.ctx
    stats = ctx.store.stats()
    counters = {name: value for name, value in asdict(ctx.counters).items()
                if isinstance(value, int)}  # fmt: skip
    files = ctx.cache.workflow_files()
    return page.page(
        "about.html", stats=stats, states=states_in_order(stats.states),
        counters=[(label, counters.get(name, 0)) for name, label in COUNTERS],
        started=ctx.started, files=len(files), broken=sum(1 for f in files if f.error),
        settings=[("workflow folder", str(ctx.folder)), ("database", ctx.db_path),
                  ("time zone", ctx.timezone), ("backload limit", str(ctx.max_tasks))],
    )  # fmt: skip
