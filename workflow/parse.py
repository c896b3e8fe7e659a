"""Parsing a workflow file: TOML bytes to validated phases, or a `WorkflowError`."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import tomli

from workflow.errors import WorkflowError
from workflow.phase import PhaseRecord
from workflow.query import parse_query
from workflow.validate import phase_statuses

PHASE_FIELDS = {
    "task": "task",
    "rule": "rule",
    "dependson": "depends_on",
    "retry": "retry",
    "template": "template",
    "dependsOn": "depends_on",  # the usual spelling, found without normalizing
}
MAX_RETRY = 2**63 - 1
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*[\"']?phase[\"']?\s*\]\]", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Workflow:
    """One parsed file: its phases in file order, each with its validation status."""

    path: str
    phases: tuple[PhaseRecord, ...]
    warnings: tuple[str, ...] = ()


def parse_workflow(data: bytes, path: str) -> Workflow:
    """Parse and validate one workflow file; raise `WorkflowError` if it cannot be loaded.

    Validation findings never raise: they become each phase's `status`.
    """
    text = _decode(data, path)
    try:
        document = tomli.loads(text)
    except tomli.TOMLDecodeError as err:
        raise WorkflowError(
            path, f"TOML syntax: {err.msg} (column {err.colno})", line=err.lineno
        ) from None
    except RecursionError:
        raise WorkflowError(path, "TOML nested too deeply") from None
    tables, warnings = _phase_tables(document, path)
    locate = _Locator(text, len(tables))
    drafts = [_read_phase(table, n, path, locate) for n, table in enumerate(tables, 1)]
    records = [record for record, _ in drafts]
    _check_duplicates(records, path, locate)
    statuses = phase_statuses(records, [notes for _, notes in drafts])
    phases = tuple(
        replace(record, status=status) if status else record
        for record, status in zip(records, statuses, strict=True)
    )
    return Workflow(path=path, phases=phases, warnings=warnings)


def _decode(data: bytes, path: str) -> str:
    if not data.strip():
        raise WorkflowError(path, "empty file (not yet written?)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise WorkflowError(
            path, f"not UTF-8 text (byte 0x{data[err.start]:02x})", line=line
        ) from None
    return text.removeprefix("\ufeff")


def _phase_tables(document: dict[str, Any], path: str) -> tuple[list[dict], tuple[str, ...]]:
    """The `[[Phase]]` (or `[[phase]]`) tables; other top-level keys become warnings."""
    spellings = [key for key in document if key.lower() == "phase"]
    if not spellings:
        raise WorkflowError(path, "no [[Phase]] tables")
    if len(spellings) > 1:
        raise WorkflowError(
            path, f"mixes {' and '.join(f'[[{s}]]' for s in spellings)}: use one spelling"
        )
    tables = document[spellings[0]]
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise WorkflowError(path, f"{spellings[0]} must be an array of tables ([[{spellings[0]}]])")
    warnings = tuple(f"warning: unknown key: {k}" for k in document if k not in spellings)
    return tables, warnings


def _read_phase(
    table: dict[str, Any], number: int, path: str, locate: _Locator
) -> tuple[PhaseRecord, list[str]]:
    """One table to a record (status still blank) plus its parse findings (unknown keys...)."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in table.items():
        field = _field_of(key)
        if field is None:
            notes.append(f"warning: unknown key: {key}")
            continue
        if field in values:
            first = next(k for k in table if _field_of(k) == field)
            raise _field_error(path, number, key, f"{key} repeats {first}", locate)
        if type(value) is not str or field == "retry":
            value = _check_type(field, key, value, path, number, locate)
        values[field] = value
    task = values.get("task", "").strip()
    if not task:
        raise WorkflowError(path, f"phase {number}: missing task", line=locate.phase(number))
    topic, colon, task_job = task.partition(":")
    if not topic:
        task_key = next(k for k in table if _field_of(k) == "task")
        raise _field_error(path, number, task_key, f"task {task!r} has no topic", locate)
    rule = values.get("rule", "")
    rule_job = parse_query(rule).get("job", "") if "job=" in rule else ""
    if not colon and rule_job:
        task = f"{topic}:{rule_job}"
    elif colon and rule_job and rule_job != task_job:
        notes.append(f"warning: rule job={rule_job} ignored: task names job {task_job}")
    values["task"] = task
    return PhaseRecord(file_path=path, **values), notes


def _field_of(key: str) -> str | None:
    return PHASE_FIELDS.get(key) or PHASE_FIELDS.get(key.lower().replace("_", ""))


def _check_type(field: str, key: str, value: Any, path: str, number: int, locate: _Locator) -> Any:
    if field == "retry":
        if isinstance(value, bool) or not isinstance(value, int):
            problem = f"{key} must be an integer, got {_describe(value)}"
            raise _field_error(path, number, key, problem, locate)
        if value < 0:
            raise _field_error(path, number, key, f"{key} must not be negative", locate)
        if value > MAX_RETRY:
            problem = f"{key} must be at most {MAX_RETRY} (a 64-bit integer), got {value}"
            raise _field_error(path, number, key, problem, locate)
        return value
    if not isinstance(value, str):
        problem = f"{key} must be a string, got {_describe(value)}"
        raise _field_error(path, number, key, problem, locate)
    return value


def _check_duplicates(phases: list[PhaseRecord], path: str, locate: _Locator) -> None:
    first: dict[str, int] = {}
    for number, phase in enumerate(phases, 1):
        if phase.task in first:
            problem = (
                f"phase {number}: duplicate task {phase.task} (first in phase {first[phase.task]})"
            )
            raise WorkflowError(path, problem, line=locate.phase(number))
        first[phase.task] = number


def _describe(value: Any) -> str:
    kind = {str: "string", int: "integer", float: "float", bool: "boolean", list: "array"}
    return f"{kind.get(type(value), 'table' if isinstance(value, dict) else 'value')} {value!r}"


def _field_error(path: str, number: int, key: str, problem: str, locate: _Locator) -> WorkflowError:
    return WorkflowError(path, f"phase {number}: {problem}", line=locate.key(number, key))


class _Locator:
    """Finds the line of a phase or of a key in it, for errors TOML itself cannot place.

    Best effort: phases written as inline arrays have no header lines, and then no line is given.
    """

    def __init__(self, text: str, count: int) -> None:
        self._text = text
        self._count = count

    @cached_property
    def _starts(self) -> list[int]:
        """Offsets of the `[[Phase]]` headers, found only once an error needs a line."""
        starts = [m.start() for m in _HEADER.finditer(self._text)]
        return starts if len(starts) == self._count else []

    def phase(self, number: int) -> int | None:
        if not self._starts:
            return None
        return self._text.count("\n", 0, self._starts[number - 1]) + 1

    def key(self, number: int, key: str) -> int | None:
        starts = self._starts
        if not starts:
            return None
        start = starts[number - 1]
        end = starts[number] if number < len(starts) else len(self._text)
        pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?\s*=", re.MULTILINE)
        match = pattern.search(self._text, start, end)
        return self._text.count("\n", 0, match.start()) + 1 if match else self.phase(number)
