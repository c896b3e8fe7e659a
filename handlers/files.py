"""Uploading, deleting and restoring workflow files, and their version history (DESIGN §6)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["files"])
