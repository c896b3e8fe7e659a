"""What the taskmaster's loop is told (its topics, its settings) and what it counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class Topics:
    """Where done tasks, failed tasks and file messages travel; `failed="-"` disables it."""

    done: str = "done"
    failed: str = "retry-failed"
    files: str = "files"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopSettings:
    """How the loop keeps state: the lease, batches, stuck tasks and retention."""

    lease: float = 10.0  # seconds; renewed every third of it
    batch: int = 256  # messages resolved per transaction, at most
    task_ttl: timedelta = timedelta(hours=4)
    stuck_every: float = 5.0  # seconds between looks for stuck tasks
    due_every: float = 0.1  # seconds between looks for due records not sent at once
    retention: timedelta | None = timedelta(days=90)  # None keeps everything
    purge_every: timedelta = timedelta(days=1)
    start_paused: bool = False  # pause every workflow file on taking the lease first
    paused_at_creation: bool = False  # pause each file that has no control yet


@dataclass(slots=True)
class Counters:
    """What the taskmaster did, for its log line at stop and for `/metrics`.

    The tallies by label add up to their totals (`sent_topics` to `sent`, `done_results` to
    `done`); they stay out of the log line, where a topic per task type would drown it. The
    API reads them from another thread: copy a tally with `dict(...)`, which is atomic.
    """

    sent: int = 0
    done: int = 0
    retries: int = 0
    failed: int = 0
    alerts: int = 0
    children: int = 0
    files: int = 0
    duplicates: int = 0
    bad_messages: int = 0
    phase_errors: int = 0
    failures: int = 0
    stuck: int = 0
    purged: int = 0
    held: int = 0
    control_errors: int = 0
    sent_topics: Counter[str] = field(default_factory=Counter, repr=False)
    done_results: Counter[str] = field(default_factory=Counter, repr=False)
    done_alerts: Counter[str] = field(default_factory=Counter, repr=False)
    """Alerts raised by done messages, by kind (`failed`, `alert`)."""

    def add(self, **counts: int) -> None:
        """Add to the named counters (a name that is no counter is a bug: AttributeError)."""
        for name, count in counts.items():
            setattr(self, name, getattr(self, name) + count)

    def alerts_by_kind(self) -> dict[str, int]:
        """Alerts raised, by kind: those of done messages, and those the other counters
        count one alert each (every phase error, bad message and stuck task is one)."""
        return {
            **dict(self.done_alerts),
            "phase_error": self.phase_errors,
            "bad_message": self.bad_messages,
            "stuck": self.stuck,
        }


DEFAULT_TOPICS = Topics()
DEFAULT_SETTINGS = LoopSettings()
