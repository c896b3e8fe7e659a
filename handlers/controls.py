"""Workflow switches (pause, resume) and their audit; refresh now (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["controls"])
