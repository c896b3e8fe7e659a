"""The figures `/metrics` shows beyond the taskmaster's `Counters`: how long things take.

One `Metrics` per process, made by the wiring and handed to the taskmaster (done message to
child send, phase durations), to the refresh path (reload durations, failed refreshes) and to
the API, which reads it at scrape time. Nothing is global, so two taskmasters in one process
(tests) keep their figures apart. Recording is a few additions under a lock, once per batch
or per refresh, so the hot path pays nothing it would notice; prometheus_client is imported
by the API alone, which turns these snapshots into its text format.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cache.watcher import Refreshable
from flowlord.state import TaskRecord

RELOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: a refresh of one changed file takes milliseconds, a cold load of 10,000 files
seconds."""
HOP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds from a done message's arrival to its children's send: milliseconds when healthy."""

PhaseKey = tuple[str, str]
"""(workflow file key, phase name)."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Observations per bucket (not cumulative: `counts[i]` are those in
    (bounds[i-1], bounds[i]], the last those above every bound) and their sum."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)


class Histogram:
    """Fixed buckets; `observe` may be called from any thread."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(sorted(bounds))
        self._counts = [0] * (len(self._bounds) + 1)
        self._total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, count: int = 1) -> None:
        """Record `count` observations of `value` at once (the children of one batch are
        sent together: one call, not one per child)."""
        if count <= 0:
            return
        index = bisect_left(self._bounds, value)  # the first bound >= value: Prometheus' `le`
        with self._lock:
            self._counts[index] += count
            self._total += value * count

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            return HistogramSnapshot(self._bounds, tuple(self._counts), self._total)


class Durations:
    """Count and total seconds per phase: a Prometheus summary without quantiles (quantiles
    over a process's whole life say little; rate(sum) / rate(count) is the useful figure)."""

    def __init__(self) -> None:
        self._by_phase: dict[PhaseKey, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def observe(self, ended: Iterable[TaskRecord]) -> None:
        """Record the records that reached their end, a batch at a time: those with both
        times (a worker may leave `started` out; an end before the start says nothing)."""
        with self._lock:
            by_phase = self._by_phase
            for record in ended:
                started, stopped = record.started, record.ended
                if started is None or stopped is None or stopped < started:
                    continue
                count, total = by_phase.get((record.workflow, record.phase), (0, 0.0))
                by_phase[record.workflow, record.phase] = (
                    count + 1,
                    total + (stopped - started).total_seconds(),
                )

    def snapshot(self) -> dict[PhaseKey, tuple[int, float]]:
        with self._lock:
            return dict(self._by_phase)


class Metrics:
    """The process's timings. `clock` is a monotonic clock in seconds."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.reload = Histogram(RELOAD_BUCKETS)
        self.done_to_child = Histogram(HOP_BUCKETS)
        self.phase_durations = Durations()
        self._refresh_errors = 0
        self._lock = threading.Lock()

    @property
    def refresh_errors(self) -> int:
        """Refreshes that failed: a file that would not load, a folder that could not be
        listed (one per refresh, however many files failed in it)."""
        return self._refresh_errors

    def timed_refresh(self, refresh: Callable[[], list[str]]) -> list[str]:
        """Run one refresh of the workflow files, recording its duration and whether it
        failed; its answer and its exception pass through unchanged."""
        started = self.clock()
        try:
            return refresh()
        except Exception:
            with self._lock:
                self._refresh_errors += 1
            raise
        finally:
            self.reload.observe(self.clock() - started)

    def timing(self, cache: Refreshable) -> Refreshable:
        """`cache` as the watcher refreshes it, each refresh timed here."""
        return _TimedRefresh(cache, self)


class _TimedRefresh:
    def __init__(self, cache: Refreshable, metrics: Metrics) -> None:
        self._cache = cache
        self._metrics = metrics

    def refresh(self) -> list[str]:
        return self._metrics.timed_refresh(self._cache.refresh)

    def refresh_files(self, keys: Iterable[str]) -> list[str]:
        return self._metrics.timed_refresh(lambda: self._cache.refresh_files(keys))
