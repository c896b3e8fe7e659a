"""Prometheus metrics at /metrics (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["metrics"])
