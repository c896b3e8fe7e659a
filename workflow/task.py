"""The bus message: a `Task`, JSON-compatible with the Go `pcelvng/task` format."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from workflow.query import encode_query, parse_query

_FIELDS = ("type", "job", "info", "meta", "id", "created", "started", "ended", "result", "msg")
_OMITEMPTY = frozenset({"job", "meta", "started", "ended", "result", "msg"})
_TIME_FIELDS = ("created", "started", "ended")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


class TaskError(ValueError):
    """A task message that cannot be decoded; the message names the field and the problem."""


class Result(StrEnum):
    """How a task ended; `NONE` means it has not ended yet."""

    NONE = ""
    COMPLETE = "complete"
    ERROR = "error"
    ALERT = "alert"
    WARN = "warn"


_ALLOWED_RESULTS = ", ".join(json.dumps(r.value) for r in Result)


def _json_type(value: object) -> str:
    """The JSON type name of a decoded value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string"


def _decode_object(data: str | bytes) -> dict[str, object]:
    """One `json.loads`, with every decoding failure turned into a `TaskError`."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise TaskError(
                f"task JSON is not valid UTF-8: {err.reason} at byte {err.start}"
            ) from None
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as err:
        raise TaskError(
            f"invalid task JSON: {err.msg} at line {err.lineno} column {err.colno} (char {err.pos})"
        ) from None
    except (ValueError, RecursionError) as err:
        raise TaskError(f"invalid task JSON: {type(err).__name__}: {err}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"task JSON must be an object, got {_json_type(raw)}")
    return raw


def _string_fields(raw: dict[str, object]) -> dict[str, str]:
    """The known fields present in `raw`; `null` counts as absent, as in Go."""
    values: dict[str, str] = {}
    for name in _FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        if type(value) is not str:
            raise TaskError(f"task field {name!r} must be a string, got {_json_type(value)}")
        values[name] = value
    return values


def parse_time(text: str, field: str) -> datetime:
    """Parse an RFC 3339 time as Go's `time.Parse(time.RFC3339, ...)` accepts it.

    Requires `YYYY-MM-DDTHH:MM:SS`, optional fractional seconds (any digits, truncated to
    microseconds) and `Z` or `±HH:MM`; ISO 8601 forms that `fromisoformat` also takes (no offset,
    no seconds, basic format, space separator) are rejected. Raises `TaskError` naming `field`.
    """
    if _RFC3339.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError as err:
            raise TaskError(f"task field {field!r} is not a valid time: {text!r} ({err})") from None
    raise TaskError(f"task field {field!r} is not an RFC 3339 time: {text!r}")


def rfc3339(when: datetime) -> str:
    """Format an aware datetime as RFC 3339, like Go's `Format(time.RFC3339)`.

    Keeps the datetime's own offset, writing `Z` when it is zero; microseconds appear only when
    non-zero. Raises `ValueError` for a naive datetime or an offset with seconds, since RFC 3339
    cannot express either.
    """
    offset = when.utcoffset()
    if offset is None:
        raise ValueError(f"rfc3339 needs an aware datetime, got naive {when!r}")
    if offset % timedelta(minutes=1):
        raise ValueError(f"rfc3339 cannot express a sub-minute UTC offset: {offset}")
    text = when.isoformat()
    return text[:-6] + "Z" if not offset else text


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One task message. All fields are strings on the wire; times are RFC 3339 strings."""

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
        """Decode and validate one message; unknown keys are ignored, a JSON `null` is unset.

        Raises `TaskError` for bad JSON or UTF-8, a non-object, a missing/empty `type`, a
        non-string field, an unknown `result` or a time field that is not RFC 3339.
        """
        values = _string_fields(_decode_object(data))
        if not values.get("type"):
            problem = "is empty" if "type" in values else "is missing"
            raise TaskError(f"task field 'type' {problem}")
        for name in _TIME_FIELDS:
            if values.get(name):
                parse_time(values[name], name)
        result = values.pop("result", "")
        try:
            return cls(**values, result=Result(result))
        except ValueError:
            raise TaskError(
                f"task field 'result' is {result!r}; allowed: {_ALLOWED_RESULTS}"
            ) from None

    def to_json(self) -> str:
        """Compact JSON in Go's field order, omitting empty `omitempty` fields as Go does."""
        out: dict[str, str] = {}
        for name in _FIELDS:
            value = getattr(self, name)
            if value or name not in _OMITEMPTY:
                out[name] = value
        return json.dumps(out, ensure_ascii=False, separators=(",", ":"))

    def meta_values(self) -> dict[str, str]:
        """The meta query as a dict; the first value of a repeated key wins."""
        return parse_query(self.meta)

    def meta_value(self, key: str) -> str:
        """One meta value, `""` when absent."""
        return parse_query(self.meta).get(key, "")

    def with_meta(self, **values: str) -> Task:
        """A copy with these meta keys set; other keys keep their values and order.

        The whole meta string is re-encoded, so duplicate keys and parts without `=` are dropped.
        """
        meta = parse_query(self.meta)
        meta.update(values)
        return replace(self, meta=encode_query(meta))
