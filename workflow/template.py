"""Phase templates rendered into a task's info, and the time read back from a done task's info.

`render` fills `{yyyy}`, `{mm}`, `{dd}`, `{hh}`, `{ts}` and `{meta:KEY}` when a task is created;
`info_time` recovers the task's time from its info's query (`time`, `hour`, `day`, `date`) or,
failing that, from its path the way pcelvng/task's `tmpl.PathTime` does (`path_time`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta, timezone

from workflow.query import parse_query

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][\w-]*)(?::([^{}]*))?\}")
_PLACEHOLDER_PARTS_RE = re.compile(r"\{([A-Za-z_][\w-]*)(:[^{}]*)?\}")  # the colon kept: {x:}

_DATE = r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"
_CLOCK = r":(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?"
_OFFSET = r"(?:[Zz]|(?P<sign>[+\- ])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?"
_TIME_RE = re.compile(rf"{_DATE}[Tt](?P<h>[0-9]{{2}}){_CLOCK}{_OFFSET}")
_HOUR_RE = re.compile(rf"{_DATE}[Tt](?P<h>[0-9]{{2}})(?:{_CLOCK}{_OFFSET})?")
_DAY_RE = re.compile(_DATE)

_STAMP = r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})"
_PATH_HOUR_RES = tuple(
    re.compile(pattern)
    for pattern in (
        r"(?:^|/)(?P<y>[0-9]{4})/(?P<m>[0-9]{2})/(?P<d>[0-9]{2})/(?P<h>[0-9]{2})(?=/|$)",
        r"(?<![0-9])(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})T(?P<h>[0-9]{2})",
        rf"(?<![0-9]){_STAMP}T(?P<h>[0-9]{{2}})",
        rf"(?<![0-9]){_STAMP}(?P<h>[0-9]{{2}})(?![0-9])",
    )
)
_PATH_DAY_RES = tuple(
    re.compile(pattern)
    for pattern in (
        r"(?:^|/)(?P<y>[0-9]{4})/(?P<m>[0-9]{2})/(?P<d>[0-9]{2})(?=/|$)",
        r"(?<![0-9])(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})(?![0-9])",
        rf"(?<![0-9]){_STAMP}(?![0-9])",
    )
)
TIME_KEYS = frozenset({"yyyy", "mm", "dd", "hh", "ts"})
_MIN_PATH_YEAR = 1970
_MAX_PATH_YEAR = 2200


class TemplateError(ValueError):
    """A template or task info that cannot be used; the message names the bad key or param."""


def render(template: str, when: datetime, meta: Mapping[str, str]) -> str:
    """Fill the placeholders of `template` from `when`'s wall time and the task's `meta`.

    `when` must be timezone-aware and already in the configured zone. Text that is not a
    placeholder is copied verbatim; an unknown key or a missing meta key is a `TemplateError`.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"render needs a timezone-aware time, got naive {when.isoformat()}")
    if "{" not in template:
        return template
    date = f"{when.year:04d}{when.month:02d}{when.day:02d}"
    fields = {
        "yyyy": date[:4],
        "mm": date[4:6],
        "dd": date[6:],
        "hh": f"{when.hour:02d}",
        "ts": f"{date}T{when.hour:02d}{when.minute:02d}{when.second:02d}",
    }

    def substitute(match: re.Match[str]) -> str:
        key, name = match.group(1, 2)
        if key == "meta" and name is not None:
            if name not in meta:
                raise TemplateError(f"meta key {name!r} not in task meta")
            return meta[name]
        if name is None and key in TIME_KEYS:
            return fields[key]
        raise TemplateError(f"unknown template key {match.group(0)}")

    return _PLACEHOLDER_RE.sub(substitute, template)


def template_problem(template: str, fillable_meta: Collection[str] | None) -> str:
    """Why `render` would fail on `template` for every task of a phase ("" when it cannot).

    `fillable_meta` is the meta every task of the phase carries, or None when unknown (then
    only unknown keys are found). Checked by validation, so that run never meets the error.
    """
    for key, colon_name in _PLACEHOLDER_PARTS_RE.findall(template):
        shown = f"{{{key}{colon_name}}}"
        if key == "meta" and colon_name:
            name = colon_name[1:]
            if fillable_meta is not None and name not in fillable_meta:
                carried = ", ".join(sorted(fillable_meta)) or "none"
                return f"{shown} is never set: this phase's tasks carry meta {carried}"
        elif colon_name or key not in TIME_KEYS:
            return f"unknown template key {shown}"
    return ""


def info_time(info: str) -> datetime | None:
    """The time of a done task from its info (`path?query`), in UTC; None if it names none.

    The first non-empty query param of `time`, `hour`, `day`, `date` decides, and a malformed
    one is a `TemplateError`; with none of them the path's time is used (`path_time`).
    """
    path, _, query = info.partition("?")
    params = parse_query(query)
    for name, parse in _INFO_PARAMS:
        value = params.get(name)
        if value:
            return parse(name, value)
    return path_time(path)


def path_time(path: str) -> datetime | None:
    """The time encoded in a file path, in UTC, as pcelvng/task's `tmpl.PathTime` finds it.

    Hour-level matches beat day-level ones; within a level `yyyy/mm/dd[/hh]` folders beat
    stamps (`2026-11-21T05`, `20261121T05`, `2026112105`, `2026-11-21`, `20261121`).
    Impossible dates and years outside 1970-2200 are not matches. None when nothing matches.
    """
    for pattern in (*_PATH_HOUR_RES, *_PATH_DAY_RES):
        for match in pattern.finditer(path):
            found = _path_match_time(match)
            if found is not None:
                return found
    return None


def _path_match_time(match: re.Match[str]) -> datetime | None:
    """The UTC time of one path match, or None when it is not a plausible date."""
    year, month, day = int(match["y"]), int(match["m"]), int(match["d"])
    hour = int(match.groupdict().get("h") or 0)
    if not _MIN_PATH_YEAR <= year <= _MAX_PATH_YEAR:
        return None
    try:
        return datetime(year, month, day, hour, tzinfo=UTC)
    except ValueError:
        return None


def _param_parser(pattern: re.Pattern[str]) -> Callable[[str, str], datetime]:
    """A parser for one info param: a full match of `pattern`, else a `TemplateError`."""

    def parse(name: str, value: str) -> datetime:
        match = pattern.fullmatch(value)
        if match is None:
            raise TemplateError(f"malformed {name}={value!r} in task info")
        try:
            return _match_time(match)
        except (ValueError, OverflowError):  # no such date, or its UTC time leaves the calendar
            raise TemplateError(f"invalid {name}={value!r} in task info") from None

    return parse


def _match_time(match: re.Match[str]) -> datetime:
    """The UTC time of a `time`/`hour`/`day` match; ValueError for an impossible one."""
    groups = match.groupdict()
    fraction = (groups.get("f") or "")[:6].ljust(6, "0")
    local = datetime(
        int(groups["y"]),
        int(groups["m"]),
        int(groups["d"]),
        int(groups.get("h") or 0),
        int(groups.get("mi") or 0),
        int(groups.get("s") or 0),
        int(fraction),
        tzinfo=_offset(groups),
    )
    return local.astimezone(UTC)


def _offset(groups: dict[str, str | None]) -> timezone:
    """The zone of a parsed time: UTC unless a numeric offset is given.

    A space stands for `+`, since an unescaped `+` in a query decodes to a space.
    """
    sign, hours, minutes = groups.get("sign"), groups.get("oh"), groups.get("om")
    if sign is None or hours is None or minutes is None:
        return UTC
    if int(minutes) >= 60:
        raise ValueError(f"offset minutes {minutes} out of range")
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


_INFO_PARAMS: tuple[tuple[str, Callable[[str, str], datetime]], ...] = (
    ("time", _param_parser(_TIME_RE)),
    ("hour", _param_parser(_HOUR_RE)),
    ("day", _param_parser(_DAY_RE)),
    ("date", _param_parser(_DAY_RE)),
)
