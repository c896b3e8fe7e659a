"""Server-sent events at /api/events (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["events"])
