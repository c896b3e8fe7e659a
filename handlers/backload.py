"""Backloads: the Go flowlord's /backload, a dry run unless executed (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["backload"])
