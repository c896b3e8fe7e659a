"""`flowlord.metrics`: histogram buckets as Prometheus reads them, phase durations from the
records' own times, and refreshes timed on an injected clock, failures counted and passed on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

import pytest

from cache import RefreshError
from flowlord.metrics import Histogram, Metrics
from flowlord.state import TaskRecord
from tests.conftest import FIXED_NOW
from workflow.state import Origin, State


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.at = 100.0

    def __call__(self) -> float:
        return self.at


class Cache:
    """A refreshable that takes `seconds` of `ticks` and may fail."""

    def __init__(self, ticks: Ticks, seconds: float, error: Exception | None = None) -> None:
        self.ticks, self.seconds, self.error = ticks, seconds, error
        self.asked: list[list[str] | None] = []

    def refresh(self) -> list[str]:
        return self._run(None)

    def refresh_files(self, keys: Iterable[str]) -> list[str]:
        return self._run(list(keys))

    def _run(self, keys: list[str] | None) -> list[str]:
        self.asked.append(keys)
        self.ticks.at += self.seconds
        if self.error is not None:
            raise self.error
        return ["a.toml"]


def test_a_value_on_a_bound_falls_in_that_bucket_as_le_says() -> None:
    histogram = Histogram([0.1, 1.0])
    for observed in (0.1, 0.5, 1.0, 7.0):
        histogram.observe(observed)
    histogram.observe(0.05, count=3)
    histogram.observe(0.05, count=0)
    snapshot = histogram.snapshot()
    assert snapshot.counts == (4, 2, 1)
    assert snapshot.count == 7
    assert snapshot.total == pytest.approx(0.1 + 0.5 + 1.0 + 7.0 + 0.15)


def test_phase_durations_come_from_started_and_ended() -> None:
    metrics = Metrics()
    start = FIXED_NOW
    timed = replace(_RECORD, started=start, ended=start + timedelta(seconds=30))
    metrics.phase_durations.observe([
        timed,
        replace(timed, ended=start + timedelta(seconds=90)),
        replace(timed, phase="other", ended=start + timedelta(seconds=5)),
        replace(timed, started=None),  # a worker that did not say: no duration
        replace(timed, ended=start - timedelta(seconds=1)),  # clocks apart: says nothing
    ])  # fmt: skip
    assert metrics.phase_durations.snapshot() == {
        ("w.toml", "extract"): (2, 120.0),
        ("w.toml", "other"): (1, 5.0),
    }


def test_a_refresh_is_timed_through_the_wrapper_the_watcher_gets() -> None:
    ticks = Ticks()
    metrics = Metrics(clock=ticks)
    cache = Cache(ticks, 0.02)
    timed = metrics.timing(cache)
    assert timed.refresh() == ["a.toml"]
    assert timed.refresh_files(iter(["b.toml"])) == ["a.toml"]
    assert cache.asked == [None, ["b.toml"]]
    snapshot = metrics.reload.snapshot()
    assert snapshot.count == 2 and snapshot.total == pytest.approx(0.04)
    assert metrics.refresh_errors == 0


@pytest.mark.parametrize(
    "error", [RefreshError({"b.toml": "bad"}, ["a.toml"]), FileNotFoundError("gone")]
)
def test_a_failed_refresh_is_counted_timed_and_raised_unchanged(error: Exception) -> None:
    ticks = Ticks()
    metrics = Metrics(clock=ticks)
    with pytest.raises(type(error)) as raised:
        metrics.timing(Cache(ticks, 3.0, error)).refresh()
    assert raised.value is error
    assert metrics.refresh_errors == 1
    assert metrics.reload.snapshot().total == pytest.approx(3.0)


_RECORD = TaskRecord(
    rec=1, id="run", type="extract", workflow="w.toml", phase="extract", origin=Origin.CRON,
    origin_key="k", state=State.COMPLETE, created=FIXED_NOW, updated=FIXED_NOW,
)  # fmt: skip
