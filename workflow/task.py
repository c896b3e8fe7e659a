"""The task: the bus message, JSON-compatible with the Go pcelvng/task format."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum

from workflow.query import encode_query, parse_query

TIME_FIELDS = ("created", "started", "ended")
OMIT_EMPTY = frozenset({"job", "meta", "started", "ended", "result", "msg"})


class Result(StrEnum):
    """How a task ended; `NONE` while it is not done."""

    NONE = ""
    COMPLETE = "complete"
    ERROR = "error"
    ALERT = "alert"
    WARN = "warn"


class TaskError(ValueError):
    """A bus message that is not a valid task; the message names the problem."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task message. Times are RFC 3339 text, `meta` a URL query (`workflow=f.toml&job=j`)."""

    type: str
    job: str = ""
    info: str = ""
    meta: str = ""
    id: str = ""
    created: str = ""
    started: str = ""
    ended: str = ""
    result: Result = Result.NONE
    msg: str = ""

    @classmethod
    def from_json(cls, data: str | bytes) -> Task:
        """Parse one message; raise `TaskError` (a ValueError) naming what is wrong."""
        try:
            document = json.loads(data)
        except UnicodeDecodeError as err:
            raise TaskError(f"task is not UTF-8 text (byte {err.start})") from None
        except json.JSONDecodeError as err:
            raise TaskError(f"task is not JSON: {err.msg} at line {err.lineno} column {err.colno}")
        if not isinstance(document, dict):
            raise TaskError(f"task must be a JSON object, got {type(document).__name__}")
        values: dict[str, str] = {}
        for name in _FIELD_NAMES:
            value = document.get(name, "")
            if not isinstance(value, str):
                raise TaskError(f"task field {name!r} must be a string, got {_json_type(value)}")
            values[name] = value
        if not values["type"]:
            raise TaskError("task has no 'type'")
        for name in TIME_FIELDS:
            if values[name]:
                parse_time(values[name], name)
        try:
            result = Result(values.pop("result"))
        except ValueError:
            allowed = ", ".join(r.value for r in Result if r.value)
            raise TaskError(
                f"task field 'result' is {document['result']!r}, not one of {allowed}"
            ) from None
        return cls(result=result, **values)

    def to_json(self) -> str:
        """Compact JSON in field order; Go's `omitempty` fields are left out when empty."""
        return json.dumps(
            {
                name: str(getattr(self, name))
                for name in _FIELD_NAMES
                if getattr(self, name) or name not in OMIT_EMPTY
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    def meta_values(self) -> dict[str, str]:
        """The meta query as a dict (first value of a repeated key)."""
        return parse_query(self.meta)

    def meta_value(self, key: str) -> str:
        """One meta value, `""` when absent."""
        return self.meta_values().get(key, "")

    def with_meta(self, **values: str) -> Task:
        """A copy with these meta keys set, others kept in their order."""
        return replace(self, meta=encode_query({**self.meta_values(), **values}))


_FIELD_NAMES = tuple(f.name for f in fields(Task))


def parse_time(text: str, field: str) -> datetime:
    """An RFC 3339 time (date, time and offset); raises TaskError naming the field."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or "T" not in text.upper() or when.tzinfo is None:
        raise TaskError(f"task field {field!r} is not an RFC 3339 time: {text!r}")
    return when


def rfc3339(when: datetime) -> str:
    """UTC with `Z`, whole seconds unless the time has microseconds."""
    text = when.astimezone(UTC).isoformat(timespec="auto")
    return text.replace("+00:00", "Z")


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {int: "number", float: "number", list: "array", dict: "object"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
