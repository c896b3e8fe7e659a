"""Files rules (`files=<glob>`): which phases a file message starts, and the tasks it makes.

Pure: the taskmaster hands in the message body, ids and `now`. Globs are compiled once, when
a workflow file is scheduled, into an index (see `FileRules`), so matching a path looks only at
the rules it can match: well under a millisecond at 10,000 rules, where a regex per rule costs
several.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from workflow.batch import DEFAULT_MAX_TASKS, BatchError
from workflow.build import MetaRows, phase_tasks
from workflow.phase import PhaseRecord
from workflow.query import parse_query
from workflow.task import Task
from workflow.template import TemplateError, path_time

MAX_PATH_CHARS = 4096
_WILDCARD = re.compile(r"\*\*|\*|\?")


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A `files=` glob as a regex: `*` and `?` stay within one path segment, `**` crosses them."""
    parts = re.split(r"(\*\*|\*|\?)", glob)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts) + r"\Z")


@dataclass(frozen=True, slots=True)
class _Rule:
    """One compiled glob, indexed by its longest literal piece (which any match contains)."""

    phase: PhaseRecord
    position: int
    piece: str
    pattern: re.Pattern[str]


def _compile(phase: PhaseRecord, position: int, glob: str) -> _Rule:
    piece = max(_WILDCARD.split(glob), key=len)
    return _Rule(phase, position, piece, glob_pattern(glob))


class FileRules:
    """The phases of each workflow file that a file message can start.

    Every rule is indexed by the longest literal piece of its glob, which any path it matches
    must contain. A path is looked up by its substrings of the lengths that occur as pieces
    (one dict lookup each, a few hundred for a usual path), and only the rules found there are
    matched by regex: prefix-anchored globs (`s3://bucket/x/*.csv`) and globs that start with
    a wildcard (`*/part-1-*.csv`) alike cost microseconds, not a regex per rule.
    """

    def __init__(self) -> None:
        self._by_file: dict[str, list[_Rule]] = {}
        self._by_piece: dict[str, dict[tuple[str, str], _Rule]] = {}
        self._piece_lengths: Counter[int] = Counter()

    def set_file(self, key: str, phases: Iterable[PhaseRecord]) -> None:
        """Replace the rules of one file with its phases that have a `files=` glob."""
        self.remove_file(key)
        rules = []
        for position, phase in enumerate(phases):
            wanted = "files=" in phase.rule and not phase.depends_on  # skip parsing most rules
            glob = parse_query(phase.rule).get("files", "") if wanted else ""
            if glob:
                rules.append(_compile(phase, position, glob))
        if rules:
            self._by_file[key] = rules
        for rule in rules:
            self._by_piece.setdefault(rule.piece, {})[(key, rule.phase.task)] = rule
            self._piece_lengths[len(rule.piece)] += 1

    def remove_file(self, key: str) -> None:
        for rule in self._by_file.pop(key, ()):
            bucket = self._by_piece[rule.piece]
            del bucket[(key, rule.phase.task)]
            if not bucket:
                del self._by_piece[rule.piece]
            self._piece_lengths[len(rule.piece)] -= 1
            if not self._piece_lengths[len(rule.piece)]:
                del self._piece_lengths[len(rule.piece)]

    def __len__(self) -> int:
        return sum(len(rules) for rules in self._by_file.values())

    def matching(self, path: str) -> list[PhaseRecord]:
        """The phases whose glob matches `path`, by file key, then file order."""
        candidates: dict[tuple[str, str], _Rule] = {}
        by_piece = self._by_piece
        for length in self._piece_lengths:
            for start in range(len(path) - length + 1):
                bucket = by_piece.get(path[start : start + length])
                if bucket:
                    candidates.update(bucket)
        found = [rule for rule in candidates.values() if rule.pattern.match(path)]
        found.sort(key=lambda rule: (rule.phase.file_path, rule.position))
        return [rule.phase for rule in found]

    def tasks(
        self,
        body: str,
        *,
        new_id: Callable[[], str],
        now: datetime,
        meta_rows: MetaRows | None = None,
        max_tasks: int = DEFAULT_MAX_TASKS,
    ) -> tuple[list[Task], list[str]]:
        """Tasks started by one file message (`{"path", "size", "modified"}`), and phase errors.

        The task time comes from the path (`path_time`), else `now`. Raises ValueError for a
        message that is not a file message; a phase that cannot make its tasks is an error
        of that phase only.
        """
        path = file_message_path(body)
        when = path_time(path) or now
        tasks, errors = [], []
        for phase in self.matching(path):
            meta = {"workflow": phase.file_path, "file": path, "filename": PurePosixPath(path).name}
            if phase.job:
                meta["job"] = phase.job
            try:
                tasks += phase_tasks(
                    phase, when, meta=meta, new_id=new_id, created=now,
                    meta_rows=meta_rows, max_tasks=max_tasks,
                )  # fmt: skip
            except (BatchError, TemplateError) as err:
                errors.append(f"{phase.file_path}: {phase.task}: {err}")
        return tasks, errors


def file_message_path(body: str) -> str:
    """The `path` of a file message; ValueError naming what is wrong with the message."""
    try:
        message = json.loads(body)
    except json.JSONDecodeError as err:
        raise ValueError(f"file message is not JSON: {err.msg}") from None
    except RecursionError:
        raise ValueError("file message is nested too deeply") from None
    if not isinstance(message, dict) or not isinstance(message.get("path"), str):
        raise ValueError("file message needs a string 'path'")
    path = message["path"]
    if not path:
        raise ValueError("file message has an empty 'path'")
    if len(path) > MAX_PATH_CHARS:
        raise ValueError(f"file message 'path' is {len(path)} characters, over {MAX_PATH_CHARS}")
    return path
