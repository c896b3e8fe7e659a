"""Batch rules: expand one child phase into several tasks when its parent completes.

A rule may hold a time range (`for=-72h&by=day`) and meta lists (`meta=region:us,eu`) or a
meta file (`meta-file=regions.csv`); `expand` turns them into one `BatchItem` per task.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from workflow.duration import DurationError, parse_duration

DEFAULT_MAX_TASKS = 10_000
STEPS = ("day", "hour", "month")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_DAYS_PER_400_YEARS = 146_097
_MONTHS_PER_400_YEARS = 4_800


class BatchError(ValueError):
    """A batch rule or meta file that cannot be expanded.

    `key` is the rule key at fault (`for`, `by`, `meta`, `meta-file`); the message names it.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One task of a batch: its task time and its extra meta (`{}` when none)."""

    when: datetime
    meta: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Span:
    """Steps `first..last` (inclusive) of unit `by`, numbered on the wall clock from year 1."""

    by: str
    first: int
    last: int


def expand(
    rule: Mapping[str, str],
    when: datetime,
    *,
    meta_rows: Sequence[Mapping[str, str]] | None = None,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> list[BatchItem]:
    """The tasks a parsed `rule` makes for task time `when`, ordered by time, then meta order.

    Without batch keys: `[BatchItem(when, {})]`, `when` untouched. With `for` (`by` defaults
    to `day`) the times run from the earlier to the later of `when` and `when + for`, both
    ends included: the earlier end is truncated to the start of its hour, day (midnight) or
    month (the 1st at midnight), then stepped by one hour, day or month while it is not after
    the later end. So `for=-72h&by=day` at 2026-11-21T12:00 gives the 18th..21st at midnight.
    All of this is wall-clock arithmetic in `when`'s tzinfo, which every result keeps; with
    UTC task times (flowlord's norm) wall-clock and elapsed time agree.

    `meta` lists are zipped by position; `meta-file` items are `meta_rows`, which the caller
    reads (see `parse_meta_file`). Every time gets every meta item. The task count is checked
    against `max_tasks` before any item is built. Raises `BatchError` for a bad rule, and
    plain `ValueError` for caller mistakes (naive `when`, `max_tasks < 1`, stray `meta_rows`).
    """
    if when.utcoffset() is None:
        raise ValueError(f"when must be timezone-aware, got {when.isoformat()}")
    if max_tasks < 1:
        raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
    span = _span(rule, when)
    metas = _meta_items(rule, meta_rows)
    total = (span.last - span.first + 1 if span else 1) * len(metas)
    if total > max_tasks:
        raise BatchError(
            _blamed_key(rule),
            f"{_describe(rule, span, metas)} makes {total} tasks, over the limit of {max_tasks}",
        )
    times = _times(span, when, rule) if span else [when]
    return [BatchItem(t, dict(m)) for t in times for m in metas]


def parse_meta_file(data: bytes, name: str) -> list[dict[str, str]]:
    """The rows of a meta file, one dict per task, by the extension of `name` (any case).

    `.json`, `.jsonl`, `.ndjson`: JSON lines, one object per non-blank line; string values
    are kept, others become their JSON text (`1`, `true`, `null`). `.csv`: a header row, then
    one row per record; blank lines are skipped. A UTF-8 byte order mark is ignored. An
    empty file gives `[]`. Errors name `name` and, for bad content, the line.
    """
    lower = name.lower()
    if lower.endswith(JSON_SUFFIXES):
        parse = _json_rows
    elif lower.endswith(".csv"):
        parse = _csv_rows
    else:
        raise BatchError(
            "meta-file", f"{name}: unsupported meta-file type: use .csv, .json, .jsonl or .ndjson"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BatchError("meta-file", f"{name}: not UTF-8 (byte {error.start})") from None
    return parse(text, name)


def step_count(first: datetime, last: datetime, by: str) -> int:
    """How many times `steps(first, last, by)` gives, counted without building them (a range
    far over a cap costs nothing); 0 when `last` is before `first`. `BatchError` for an
    unknown `by`."""
    if by not in STEPS:
        raise BatchError("by", f"by={by}: must be one of {', '.join(STEPS)}")
    start, end = first.replace(tzinfo=None), last.replace(tzinfo=None)
    if end < start:
        return 0
    if by != "month":
        return (end - start) // (_HOUR if by == "hour" else _DAY) + 1
    months = (end.year - start.year) * 12 + end.month - start.month
    return months + (_months_on(start, months) <= end)


def steps(first: datetime, last: datetime, by: str) -> list[datetime]:
    """`first`, then every hour, day or month after it while not after `last`, on the wall
    clock in `first`'s tzinfo (kept by every result; `last` is read on its own wall clock).

    Unlike a `for` range, which starts at the start of its first step, these keep `first`'s
    time within its step, as the Go flowlord's backload does; a month step keeps the day of
    the month, or takes the month's last day when it is shorter (the 31st, then February's
    last day, then March 31st).
    """
    start = first.replace(tzinfo=None)
    walls = (
        _months_on(start, k) if by == "month" else start + k * (_HOUR if by == "hour" else _DAY)
        for k in range(step_count(first, last, by))
    )
    return [wall.replace(tzinfo=first.tzinfo) for wall in walls]


def _months_on(start: datetime, months: int) -> datetime:
    """`start` moved `months` months on the wall clock, its day clamped to the month's end."""
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    day = min(start.day, calendar.monthrange(year, month + 1)[1])
    return start.replace(year=year, month=month + 1, day=day)


def _span(rule: Mapping[str, str], when: datetime) -> _Span | None:
    """The step range of `for`/`by`, counted without building it; None without `for`."""
    if "for" not in rule:
        if "by" in rule:
            raise BatchError("by", f"by={rule['by']}: needs a range: add for=<duration>")
        return None
    by = rule.get("by", "day")
    if by not in STEPS:
        raise BatchError("by", f"by={by}: must be one of {', '.join(STEPS)}")
    try:
        shift = parse_duration(rule["for"])
    except DurationError:
        raise BatchError("for", f"for={rule['for']}: not a duration (like -72h)") from None
    start = when.replace(tzinfo=None) - datetime.min
    try:
        end = start + shift
    except OverflowError:
        raise BatchError("for", f"for={rule['for']}: reaches outside the years 1-9999") from None
    first, last = sorted((_step_index(start, by), _step_index(end, by)))
    return _Span(by, first, last)


def _step_index(position: timedelta, by: str) -> int:
    """The number of the hour, day or month holding `position` (time since 0001-01-01)."""
    if by == "hour":
        return position // _HOUR
    if by == "day":
        return position.days
    cycles, day = divmod(position.days, _DAYS_PER_400_YEARS)
    start = date.fromordinal(day + 1)
    return cycles * _MONTHS_PER_400_YEARS + (start.year - 1) * 12 + start.month - 1


def _wall_time(index: int, by: str) -> datetime:
    """The naive start of step `index` of unit `by`; raises if outside the years 1-9999."""
    if by == "hour":
        return datetime.min + index * _HOUR
    if by == "day":
        return datetime.min + timedelta(days=index)
    year, month = divmod(index, 12)
    return datetime(year + 1, month + 1, 1)


def _times(span: _Span, when: datetime, rule: Mapping[str, str]) -> list[datetime]:
    """The start of every step of `span`, oldest first, in `when`'s tzinfo."""
    try:
        walls = [_wall_time(index, span.by) for index in range(span.first, span.last + 1)]
    except (OverflowError, ValueError):
        raise BatchError("for", f"for={rule['for']}: reaches outside the years 1-9999") from None
    return [wall.replace(tzinfo=when.tzinfo) for wall in walls]


def _meta_items(
    rule: Mapping[str, str], meta_rows: Sequence[Mapping[str, str]] | None
) -> list[Mapping[str, str]]:
    """The meta of each item in order; `[{}]` when the rule has no meta keys."""
    if "meta-file" not in rule:
        if meta_rows is not None:
            raise ValueError("meta_rows given, but the rule has no meta-file")
        return parse_meta(rule["meta"]) if "meta" in rule else [{}]
    name = rule["meta-file"]
    if "meta" in rule:
        raise BatchError("meta", f"meta={rule['meta']} and meta-file={name}: use only one")
    if meta_rows is None:
        raise BatchError("meta-file", f"meta-file={name}: its rows were not read (meta_rows)")
    if not meta_rows:
        raise BatchError("meta-file", f"meta-file={name}: has no rows")
    return list(meta_rows)


def parse_meta(text: str) -> list[Mapping[str, str]]:
    """`key:a,b|val:1,2` as `[{key: a, val: 1}, {key: b, val: 2}]`; lists must match.

    A rule's `meta=` value; public so that a backload can default to its phase's meta.
    """
    columns: dict[str, list[str]] = {}
    for part in text.split("|"):
        key, colon, values = part.partition(":")
        if not colon or not key:
            raise BatchError("meta", f"meta={text}: {part!r} is not key:value,value...")
        if key in columns:
            raise BatchError("meta", f"meta={text}: key {key!r} repeats")
        columns[key] = values.split(",")
        if "" in columns[key]:
            raise BatchError("meta", f"meta={text}: key {key!r} has an empty value")
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{key}: {n}" for key, n in lengths.items())
        raise BatchError("meta", f"meta={text}: lists differ in length ({detail})")
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _blamed_key(rule: Mapping[str, str]) -> str:
    return next(key for key in ("for", "meta", "meta-file") if key in rule)


def _describe(
    rule: Mapping[str, str], span: _Span | None, metas: Sequence[Mapping[str, str]]
) -> str:
    """The batch keys of `rule` as a user wrote them, for the over-the-limit message."""
    parts = []
    if span:
        parts.append(f"for={rule['for']} by={span.by}")
    if "meta" in rule:
        parts.append(f"meta={rule['meta']}")
    if "meta-file" in rule:
        parts.append(f"meta-file={rule['meta-file']} ({len(metas)} rows)")
    return " with ".join(parts)


def _json_rows(text: str, name: str) -> list[dict[str, str]]:
    lines = enumerate(text.split("\n"), start=1)
    return [_json_row(line, name, number) for number, line in lines if line.strip()]


def _json_row(line: str, name: str, number: int) -> dict[str, str]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as error:
        problem = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
        raise BatchError("meta-file", f"{name}: line {number}: invalid JSON: {problem}") from None
    if not isinstance(value, dict):
        raise BatchError("meta-file", f"{name}: line {number}: not a JSON object")
    return {key: v if isinstance(v, str) else json.dumps(v) for key, v in value.items()}


def _csv_rows(text: str, name: str) -> list[dict[str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((fields for fields in reader if fields), None)
        if header is None:
            return []
        _check_header(header, name, reader.line_num)
        return [_csv_row(header, fields, name, reader.line_num) for fields in reader if fields]
    except csv.Error as error:
        raise BatchError("meta-file", f"{name}: line {reader.line_num}: {error}") from None


def _check_header(header: list[str], name: str, number: int) -> None:
    if "" in header:
        raise BatchError("meta-file", f"{name}: line {number}: the header has an empty column")
    if len(set(header)) != len(header):
        raise BatchError("meta-file", f"{name}: line {number}: the header repeats a column")


def _csv_row(header: list[str], fields: list[str], name: str, number: int) -> dict[str, str]:
    if len(fields) != len(header):
        raise BatchError(
            "meta-file",
            f"{name}: line {number}: {len(fields)} fields, but the header has {len(header)}",
        )
    return dict(zip(header, fields, strict=True))
