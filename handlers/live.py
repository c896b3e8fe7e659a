"""The service's state the API reads, kept free of web imports so that `flowlord run` builds
it before FastAPI is imported: what a refresh did, and whether the process is loaded and leads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flowlord.loop import Counters


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What a refresh did: keys changed (removed ones prefixed `-`) and keys that failed."""

    changed: list[str]
    errors: dict[str, str]


Refresh = Callable[[Iterable[str] | None], Refreshed]
"""Refresh the live cache (every file when None, else these keys) and reschedule what changed,
as a watch event does."""


@dataclass(slots=True)
class Liveness:
    """Set by the service as it starts: the cache loaded, and whether this process leads."""

    loaded: threading.Event = field(default_factory=threading.Event)
    leading: Callable[[], bool] = lambda: False
    counters: Counters = field(default_factory=Counters)
    """The taskmaster's live counters, for `/metrics`."""

    @property
    def role(self) -> str:
        return "leader" if self.leading() else "standby"
