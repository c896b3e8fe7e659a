"""Files: `files=` rules started by file messages, and `meta-file`s read for batch rules.

File access stays inside the workflow folder: a `meta-file` that resolves outside it is refused.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath

from workflow import PhaseRecord, Task
from workflow.batch import BatchError, parse_meta_file
from workflow.query import encode_query, parse_query
from workflow.task import rfc3339
from workflow.template import TemplateError, path_time, render

MAX_META_FILE_BYTES = 10 * 1024 * 1024


@lru_cache(maxsize=1024)
def glob_pattern(glob: str) -> re.Pattern[str]:
    """A `files=` glob as a regex: `*` and `?` stay within one path segment, `**` crosses them."""
    parts = re.split(r"(\*\*|\*|\?)", glob)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts) + r"\Z")


class FileRules:
    """The phases of each workflow file that a file message can start."""

    def __init__(self) -> None:
        self._rules: dict[str, list[tuple[PhaseRecord, str]]] = {}

    def set_file(self, key: str, phases: Iterable[PhaseRecord]) -> None:
        rules = [(p, parse_query(p.rule).get("files", "")) for p in phases if not p.depends_on]
        self._rules[key] = [(phase, glob) for phase, glob in rules if glob]

    def remove_file(self, key: str) -> None:
        self._rules.pop(key, None)

    def tasks(
        self, body: str, *, new_id: Callable[[], str], now: datetime
    ) -> tuple[list[Task], list[str]]:
        """Tasks started by one file message (`{"path", "size", "modified"}`), and phase errors.

        Raises ValueError for a message that is not a file message.
        """
        path = _file_path(body)
        when = path_time(path) or now
        tasks, errors = [], []
        for key, rules in self._rules.items():
            for phase, glob in rules:
                if not glob_pattern(glob).match(path):
                    continue
                meta = {"workflow": key, "file": path, "filename": PurePosixPath(path).name}
                if phase.job:
                    meta["job"] = phase.job
                try:
                    info = render(phase.template, when, meta)
                except TemplateError as err:
                    errors.append(f"{key}: {phase.task}: {err}")
                    continue
                tasks.append(
                    Task(type=phase.topic, job=phase.job, info=info, meta=encode_query(meta),
                         id=new_id(), created=rfc3339(now))
                )  # fmt: skip
        return tasks, errors


def _file_path(body: str) -> str:
    try:
        message = json.loads(body)
    except json.JSONDecodeError as err:
        raise ValueError(f"file message is not JSON: {err.msg}") from None
    if not isinstance(message, dict) or not isinstance(message.get("path"), str):
        raise ValueError("file message needs a string 'path'")
    if not message["path"]:
        raise ValueError("file message has an empty 'path'")
    return message["path"]


class MetaFiles:
    """Reads `meta-file`s named by rules, relative to the workflow file, inside the folder."""

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        self._folder = Path(folder).resolve()

    def rows(self, workflow_key: str, name: str) -> list[dict[str, str]]:
        """The rows of a meta file; BatchError when it is outside the folder or unreadable."""
        path = (self._folder / PurePosixPath(workflow_key).parent / name).resolve()
        if not path.is_relative_to(self._folder):
            raise BatchError("meta-file", f"meta-file={name}: outside the workflow folder")
        try:
            if path.stat().st_size > MAX_META_FILE_BYTES:
                raise BatchError("meta-file", f"meta-file={name}: over {MAX_META_FILE_BYTES} bytes")
            data = path.read_bytes()
        except OSError as err:
            raise BatchError(
                "meta-file", f"meta-file={name}: cannot read: {err.strerror}"
            ) from None
        return parse_meta_file(data, name)
