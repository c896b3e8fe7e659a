"""The phase: one step of a workflow, as written in a `[[Phase]]` table."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflow.query import parse_query

MAX_TOPIC_CHARS = 200
_TOPIC = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9_.-]{{0,{MAX_TOPIC_CHARS - 1}}}")


def is_valid_topic(topic: str) -> bool:
    """A topic is a safe name for any bus (a file name, a stream key): `[A-Za-z0-9_.-]+`, not
    starting with a dot, at most 200 characters (a file name holds 255 bytes)."""
    return _TOPIC.fullmatch(topic) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """One `[[Phase]]` entry. `task` is `topic` or `topic:job`."""

    task: str = ""
    rule: str = ""
    depends_on: str = ""
    retry: int = 0
    template: str = ""

    @property
    def topic(self) -> str:
        """The bus topic: the part of `task` before `:`."""
        return self.task.partition(":")[0]

    @property
    def job(self) -> str:
        """The part of `task` after `:`, else the rule's `job=`, else ``""``."""
        _, colon, job = self.task.partition(":")
        if colon:
            return job
        return parse_query(self.rule).get("job", "")

    def is_empty(self) -> bool:
        """True for the "not found" phase: every phase field at its default."""
        return not (self.task or self.rule or self.depends_on or self.retry or self.template)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseRecord(Phase):
    """A phase as stored: where it came from and what validation found (`""` when fine)."""

    file_path: str = ""
    status: str = ""


NOT_FOUND = "not found"


def not_found() -> PhaseRecord:
    """The empty record `Cache.get` returns when no phase matches."""
    return PhaseRecord(status=NOT_FOUND)
