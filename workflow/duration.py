"""Durations in Go's `time.ParseDuration` syntax, as written in workflow files (`-4h`, `1h30m`)."""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_TERM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_DURATION_RE = re.compile(rf"[+-]?(?:{_TERM})+")
_TERM_RE = re.compile(r"([0-9.]+)([^0-9.]+)")

MAX_DURATION = timedelta(microseconds=(2**63 - 1) // 1_000)
_US_PER_MS = 1_000
_US_PER_S = 1_000_000
_US_PER_M = 60 * _US_PER_S
_US_PER_H = 60 * _US_PER_M


class DurationError(ValueError):
    """Text that is not a Go duration; the message quotes the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f'invalid duration "{text}"')


def parse_duration(text: str) -> timedelta:
    """Parse Go duration syntax: an optional sign, then `<number><unit>` terms, or a bare `0`.

    Units are ns, us/µs/μs, ms, s, m, h; numbers may be decimal. The result is rounded to
    the microsecond, the resolution of `timedelta`.
    """
    if not isinstance(text, str):
        raise DurationError(repr(text))
    unsigned = text[1:] if text[:1] in ("+", "-") else text
    if unsigned == "0":
        return timedelta(0)
    if not _DURATION_RE.fullmatch(text):
        raise DurationError(text)
    try:
        nanoseconds = sum(
            Fraction(number) * _NS_PER_UNIT[unit] for number, unit in _TERM_RE.findall(unsigned)
        )
        if text.startswith("-"):
            nanoseconds = -nanoseconds
        return timedelta(microseconds=round(nanoseconds / 1_000))
    except (OverflowError, ValueError):  # past timedelta, or more digits than int() takes
        raise DurationError(text) from None


def in_go_range(delta: timedelta) -> bool:
    """Whether `delta` fits Go's `time.Duration` (±2**63-1 ns, about 292 years).

    Longer durations are refused by Go's `ParseDuration`, and within this range a fire time
    of any year from 1709 to 9707 plus the duration stays inside the calendar (years 1-9999).
    """
    return -MAX_DURATION <= delta <= MAX_DURATION


def format_duration(delta: timedelta) -> str:
    """Render `delta` the way Go's `Duration.String` does (`1h30m0s`, `90ms`, `0s`).

    The output always parses back to `delta` with `parse_duration`.
    """
    micros = delta // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    if micros == 0:
        return "0s"
    if micros < _US_PER_MS:
        return f"{sign}{micros}\u00b5s"
    if micros < _US_PER_S:
        return f"{sign}{_decimal(micros, _US_PER_MS)}ms"
    hours, micros = divmod(micros, _US_PER_H)
    minutes, micros = divmod(micros, _US_PER_M)
    seconds = f"{_decimal(micros, _US_PER_S)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return f"{sign}{seconds}"


def _decimal(value: int, scale: int) -> str:
    """`value / scale` as a short decimal, without trailing zeros (`scale` is a power of ten)."""
    whole, fraction = divmod(value, scale)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
