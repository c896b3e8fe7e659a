"""Liveness and readiness: `/healthz` while the process runs, `/readyz` once the cache is
loaded (with this process's role), for load balancers and process supervisors."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from handlers.context import Ctx

router = APIRouter(tags=["status"])


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether this process has loaded its workflows, and whether it leads (fires, resolves,
    sends) or stands by (serves reads, takes over when the leader dies)."""

    ready: bool
    role: Literal["leader", "standby"]


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """200 while the process runs."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "the workflows are still loading"}},
)
def readyz(ctx: Ctx) -> Readiness | JSONResponse:
    """200 once the workflows are loaded, with the role; 503 before."""
    ready = Readiness(ready=ctx.liveness.loaded.is_set(), role=ctx.liveness.role)
    return ready if ready.ready else JSONResponse(ready.model_dump(), 503)
