"""Cron expressions of workflow rules (`cron=<expr>`), following robfig/cron's conventions.

Accepted: 5 fields (`min hour dom mon dow`), 6 fields with seconds *first*
(`sec min hour dom mon dow`), the descriptors `@hourly` ... `@annually`, and
`@every <duration>`, which croniter lacks and is implemented here.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType

from croniter import CroniterBadDateError, CroniterError, croniter

from workflow.duration import DurationError, parse_duration

DESCRIPTORS = MappingProxyType(
    {
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
        "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    }
)
EVERY = "@every"
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
SECOND_FIELD_NAMES = ("second", *FIELD_NAMES)
MAX_YEARS_BETWEEN_MATCHES = 10

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PROBE_START = datetime(2000, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)
_RANDOM_OR_HASHED = re.compile(r"(?:^|,)[hr](?:[(/,]|$)", re.IGNORECASE)


class CronError(ValueError):
    """An expression that cannot be scheduled; the message is a short human-readable reason."""


@dataclass(frozen=True, slots=True)
class Schedule(ABC):
    """A parsed expression; `expr` is the text as written in the rule."""

    expr: str

    @abstractmethod
    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after the aware `when`, in `when`'s time zone."""

    @abstractmethod
    def prev_before(self, when: datetime) -> datetime:
        """The last fire time strictly before the aware `when`, in `when`'s time zone."""


@dataclass(frozen=True, slots=True)
class CronSchedule(Schedule):
    """A field-based schedule for croniter; `spec` is the fields after descriptor expansion."""

    spec: str
    seconds_first: bool = False

    def next_after(self, when: datetime) -> datetime:
        return self._croniter(_require_aware(when)).get_next()

    def prev_before(self, when: datetime) -> datetime:
        return self._croniter(_require_aware(when)).get_prev()

    def _croniter(self, start: datetime, **options: int) -> croniter:
        return croniter(
            self.spec,
            start,
            ret_type=datetime,
            second_at_beginning=self.seconds_first,
            **options,
        )


@dataclass(frozen=True, slots=True)
class EverySchedule(Schedule):
    """`@every <interval>`: fires at whole multiples of `interval` counted from the Unix epoch.

    Anchoring at the epoch (rather than at start-up, as robfig does) makes fire times
    deterministic and unchanged by restarts. `interval` is whole seconds, at least 1s.
    """

    interval: timedelta

    def next_after(self, when: datetime) -> datetime:
        elapsed = _require_aware(when) - _EPOCH
        steps = elapsed // self.interval + 1
        return (_EPOCH + steps * self.interval).astimezone(when.tzinfo)

    def prev_before(self, when: datetime) -> datetime:
        elapsed = _require_aware(when) - _EPOCH
        steps = -(-elapsed // self.interval) - 1
        return (_EPOCH + steps * self.interval).astimezone(when.tzinfo)


# Checking an expression costs ~0.7 ms in croniter and workflows repeat a few expressions;
# schedules are immutable, so parsing is memoized.
@lru_cache(maxsize=4096)
def parse_cron(expr: str) -> Schedule:
    """Parse a rule's cron expression, rejecting any that can never fire (`0 0 31 2 *`).

    Raises `CronError` whose message is a short reason, meant to be embedded in a larger error.
    """
    if not isinstance(expr, str):
        raise CronError(f"expected text, got {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise CronError("empty expression")
    if text.split()[0] == EVERY:
        return _parse_every(expr, text)
    if text.startswith("@"):
        spec = DESCRIPTORS.get(text)
        if spec is None:
            raise CronError(f'unsupported descriptor "{text}"')
        return _checked(CronSchedule(expr, spec))
    fields = text.split()
    if len(fields) not in (5, 6):
        raise CronError(f"expected 5 or 6 fields, got {len(fields)}")
    seconds_first = len(fields) == 6
    names = SECOND_FIELD_NAMES if seconds_first else FIELD_NAMES
    for index, (name, field) in enumerate(zip(names, fields, strict=True)):
        if not _field_ok(index, field, seconds_first):
            raise CronError(f'bad {name} field "{field}"')
    return _checked(CronSchedule(expr, " ".join(fields), seconds_first))


def _parse_every(expr: str, text: str) -> EverySchedule:
    """robfig truncates `@every` to whole seconds with a 1s floor; below 1s is rejected here."""
    raw = text[len(EVERY) :].strip()
    try:
        interval = parse_duration(raw)
    except DurationError:
        raise CronError(f'bad @every duration "{raw}"') from None
    whole = interval // _ONE_SECOND * _ONE_SECOND
    if whole < _ONE_SECOND:
        raise CronError(f'@every needs at least 1s, got "{raw}"')
    return EverySchedule(expr, whole)


def _field_ok(index: int, field: str, seconds_first: bool) -> bool:
    """One field checked alone, the others `*`, so the reason can name it.

    croniter's random (`R`) and hashed (`H`) values are refused: robfig has no such syntax
    and `R` would change on every call.
    """
    if _RANDOM_OR_HASHED.search(field):
        return False
    fields = ["*"] * (6 if seconds_first else 5)
    fields[index] = field
    return croniter.is_valid(" ".join(fields), second_at_beginning=seconds_first)


def _checked(schedule: CronSchedule) -> CronSchedule:
    """Ask for one fire time: croniter accepts dates that never come, like February 31.

    A probe beats `is_valid(strict=True)`, which also rejects `0 0 31 2 1` although
    day-of-month and day-of-week are ORed and that expression fires on Mondays in February.
    """
    try:
        schedule._croniter(
            _PROBE_START, max_years_between_matches=MAX_YEARS_BETWEEN_MATCHES
        ).get_next()
    except CroniterBadDateError:
        raise CronError("never fires: no such date") from None
    except CroniterError:
        raise CronError("fields contradict each other") from None
    return schedule


def _require_aware(when: datetime) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {when.isoformat()}")
    return when
