"""Workflow files, phases, their schedule and children chains (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["workflows"])
