"""Notifications, decided: when an alert summary goes out, what it says, what a hook event holds.

No I/O and no clock: the notifier (`flowlord/notify/`) reads the tables, POSTs the bodies and
passes `now` in. Alert summaries (DESIGN §5): the first alert goes out at once; while alerts keep
coming they go out as one summary per interval, the interval doubling from the minimum to the
maximum, and back to the minimum once an interval ends with nothing to send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from workflow.hooks import EVENTS
from workflow.task import rfc3339

ALERT_SUMMARY = "alert.summary"
"""The event name of alert summaries in the delivery queue (never a hook event)."""
SUMMARY_LINES = 20
MESSAGE_CHARS = 2000
LINE_CHARS = 200


@dataclass(frozen=True, slots=True)
class SummaryState:
    """The interval running since the last summary went out; none (quiet) before the first."""

    interval: timedelta | None = None
    ends: datetime | None = None


QUIET = SummaryState()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to send a summary of the pending alerts now, the state after, and when the
    state next needs a look even if no alert comes (the end of the running interval)."""

    send: bool
    state: SummaryState
    wake_at: datetime | None


@dataclass(frozen=True, slots=True)
class SummaryPolicy:
    """The alert summary backoff, between `min_interval` and `max_interval`."""

    min_interval: timedelta = timedelta(minutes=1)
    max_interval: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.min_interval <= timedelta(0):
            raise ValueError(f"min_interval must be positive, got {self.min_interval}")
        if self.max_interval < self.min_interval:
            raise ValueError(
                f"max_interval {self.max_interval} is less than min_interval {self.min_interval}"
            )

    def decide(self, state: SummaryState, pending: int, now: datetime) -> Decision:
        """What to do with `pending` unsent alerts at `now`.

        Nothing goes out before the running interval ends. When it ends with alerts pending,
        they go out and the next interval is twice as long (up to the maximum); when it ends
        with none, the state is quiet again and the next alert goes out at once.
        """
        if state.ends is not None and now < state.ends:
            return Decision(False, state, state.ends)
        if pending <= 0:
            return Decision(False, QUIET, None)
        if state.interval is None:
            interval = self.min_interval
        else:
            interval = min(state.interval * 2, self.max_interval)
        ends = now + interval
        return Decision(True, SummaryState(interval, ends), ends)


DEFAULT_POLICY = SummaryPolicy()


class AlertLike(Protocol):
    """What a summary shows of an alert record."""

    @property
    def kind(self) -> str: ...
    @property
    def workflow(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def message(self) -> str: ...


def summary_body(alerts: Sequence[AlertLike], *, total: int | None = None) -> dict[str, str]:
    """The `{"text": ...}` body (Slack and most chat tools take it) of `total` alerts, of
    which `alerts` are the first (all of them when `total` is None).

    One alert shows whole (up to MESSAGE_CHARS); several show a count and a line each for
    the first SUMMARY_LINES, then how many more there are.
    """
    count = len(alerts) if total is None else total
    if count == 1 and alerts:
        alert = alerts[0]
        return {"text": f"flowlord alert: {_where(alert)}: {_clip(alert.message, MESSAGE_CHARS)}"}
    shown = alerts[:SUMMARY_LINES]
    lines = [f"flowlord: {count} alerts"]
    lines += [f"• {_where(a)}: {_clip(' '.join(a.message.split()), LINE_CHARS)}" for a in shown]
    if count > len(shown):
        lines.append(f"… and {count - len(shown)} more")
    return {"text": "\n".join(lines)}


def _where(alert: AlertLike) -> str:
    place = alert.workflow + (f" ({alert.phase})" if alert.phase else "")
    return f"{alert.kind} in {place}" if place else alert.kind


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def hook_body(event: str, at: datetime, record: Mapping[str, object]) -> dict[str, object]:
    """A hook's JSON body: `{"event", "at", ...record}`; `at` (RFC 3339 UTC) is when the
    event happened, and the record cannot override either name."""
    if event not in EVENTS:
        raise ValueError(f"unknown hook event {event!r} (events: {', '.join(EVENTS)})")
    fields = {name: value for name, value in record.items() if name not in ("event", "at")}
    return {"event": event, "at": rfc3339(at.astimezone(UTC)), **fields}
