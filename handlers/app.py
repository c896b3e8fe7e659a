"""The HTTP API (DESIGN §6): one FastAPI app per process, built around an `ApiContext`.

FastAPI generates the OpenAPI document (`/openapi.json`, docs at `/docs`) from the routes'
type hints and models, so the document cannot drift from the code.
"""

from __future__ import annotations

from fastapi import FastAPI

from flowlord import version
from handlers import (
    backload,
    controls,
    errors,
    events,
    files,
    metrics,
    stats,
    status,
    tasks,
    web,
    workflows,
)
from handlers.context import ApiContext
from handlers.middleware import Audit, BodyLimit

ROUTERS = (
    status.router,
    metrics.router,
    files.router,  # before workflows: `{file}/versions` must not read as a key ending `/versions`
    workflows.router,
    tasks.router,
    stats.router,
    controls.router,
    backload.router,
    events.router,
)


def create_app(ctx: ApiContext) -> FastAPI:
    """The API over `ctx`; serve it with `handlers.server.ApiServer`."""
    app = _routes()
    app.state.context = ctx
    web.install(app, ctx)
    app.add_middleware(BodyLimit)
    app.add_middleware(Audit)  # outermost: it sees a 413 too
    return app


def openapi_document() -> dict[str, object]:
    """The OpenAPI document, as the routes generate it (no server, no database needed)."""
    return _routes().openapi()


def _routes() -> FastAPI:
    app = FastAPI(
        title="flowlord",
        version=version(),
        description="Workflows, phases, task records, controls and events of one flowlord "
        "database. Writes need `Authorization: Bearer <admin token>`.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
