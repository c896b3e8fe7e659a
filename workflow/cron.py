"""Cron expressions of workflow rules, with robfig/cron's conventions.

5 fields (`min hour dom mon dow`), 6 fields with seconds first, descriptors (`@daily`...) and
`@every <duration>`, which croniter lacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from workflow.duration import DurationError, parse_duration

DESCRIPTORS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
MAX_YEARS_BETWEEN_MATCHES = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """An expression that can never fire; the message is a short reason."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed expression: `every` is set for `@every`, otherwise croniter reads `expr`."""

    expr: str
    seconds_first: bool = False
    every: timedelta | None = None

    def next_after(self, when: datetime) -> datetime:
        """The first fire time strictly after `when` (aware, in `when`'s time zone)."""
        _require_aware(when)
        if self.every is not None:
            steps = (when - _EPOCH) // self.every + 1
            return (_EPOCH + steps * self.every).astimezone(when.tzinfo)
        return self._iterator(when).get_next(datetime)

    def prev_before(self, when: datetime) -> datetime:
        """The last fire time strictly before `when`."""
        _require_aware(when)
        if self.every is not None:
            steps = -((_EPOCH - when) // self.every) - 1
            return (_EPOCH + steps * self.every).astimezone(when.tzinfo)
        return self._iterator(when).get_prev(datetime)

    def _iterator(self, when: datetime) -> croniter:
        return croniter(
            self.expr,
            when,
            second_at_beginning=self.seconds_first,
            max_years_between_matches=MAX_YEARS_BETWEEN_MATCHES,
        )


def parse_cron(expr: str) -> Schedule:
    """Parse and check an expression, including dates that never come (`0 0 31 2 *`)."""
    if not isinstance(expr, str) or not expr.strip():
        raise CronError("empty expression")
    text = " ".join(expr.split())
    if text.startswith("@every"):
        return _parse_every(text)
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise CronError(f"unsupported descriptor {text}")
        return _checked(Schedule(expr=text))
    fields = len(text.split())
    if fields not in (5, 6):
        raise CronError(f"expected 5 or 6 fields, got {fields}")
    return _checked(Schedule(expr=text, seconds_first=fields == 6))


def _parse_every(text: str) -> Schedule:
    _, _, interval = text.partition(" ")
    try:
        every = parse_duration(interval.strip())
    except DurationError:
        raise CronError(f"@every needs a duration like 5m, got {interval.strip()!r}") from None
    if every < timedelta(seconds=1):
        raise CronError("@every needs at least 1s")
    return Schedule(expr=text, every=timedelta(seconds=int(every.total_seconds())))


def _checked(schedule: Schedule) -> Schedule:
    """croniter accepts some expressions that fail only when asked for a time: ask once."""
    try:
        if not croniter.is_valid(schedule.expr, second_at_beginning=schedule.seconds_first):
            raise CronError("invalid expression")
        schedule.next_after(_EPOCH)
    except CronError:
        raise
    except (ValueError, KeyError, TypeError) as err:
        raise CronError(str(err) or type(err).__name__) from None
    return schedule


def _require_aware(when: datetime) -> None:
    if when.tzinfo is None:
        raise ValueError("a time zone-aware datetime is required")
