"""`{file}` in a path: a workflow key that stays inside the workflow folder (DESIGN §6). A key
breaking a rule, or a path that resolves outside the folder through a symlink, is a 400 and
nothing is read or written."""

from __future__ import annotations

import os
from pathlib import Path

from handlers.context import ApiContext
from handlers.errors import ApiError
from workflow.keys import key_problem


def checked_key(ctx: ApiContext, key: str) -> str:
    """`key` if it may name a workflow file of this folder; else `ApiError(400)` naming
    `file`."""
    why = key_problem(key)
    if not why and not ctx.cache.is_dir() and key != ctx.cache.workflow_path.name:
        why = f"flowlord reads one workflow file here ({ctx.cache.workflow_path.name})"
    if not why:
        why = _escape(ctx.folder, key)
    if why:
        raise ApiError(400, f"{key!r}: {why}", field="file")
    return key


def file_path(ctx: ApiContext, key: str) -> Path:
    """The file behind a checked key."""
    return ctx.folder / checked_key(ctx, key)


def _escape(folder: Path, key: str) -> str:
    """Why the path of `key` leaves `folder` through a symlink (of the file or a folder on the
    way); "" when it stays inside (whether or not it exists)."""
    root = os.path.realpath(folder)
    resolved = os.path.realpath(folder / key)
    if os.path.commonpath([root, resolved]) != root:
        return "resolves outside the workflow folder"
    return ""
