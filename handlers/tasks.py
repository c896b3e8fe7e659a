"""Task records, runs, alerts and held tasks; retry and cancel (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["tasks"])
