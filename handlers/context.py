"""What the routes read and write through: the process's cache and task store (connections of
their own, so a slow request never holds up the taskmaster), its settings, and hooks into the
running service (refresh now, who leads). Built by `flowlord.service`, or by a test."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Request

from cache import SQLiteCache
from flowlord.loop import Counters
from flowlord.metrics import Metrics
from flowlord.state import SQLiteTaskStore
from handlers.hub import EventHub
from handlers.live import Liveness, Refresh


@dataclass(slots=True, kw_only=True)
class ApiContext:
    """Everything a route needs. `cache` and `store` are the API's own connections."""

    cache: SQLiteCache
    store: SQLiteTaskStore
    db_path: str
    timezone: str
    admin_token: str = field(default="", repr=False)
    now: Callable[[], datetime]
    refresh: Refresh
    liveness: Liveness = field(default_factory=Liveness)
    metrics: Metrics = field(default_factory=Metrics)
    """The process's timings (refreshes, done to child, phase durations), for `/metrics`."""
    hub: EventHub = field(default_factory=EventHub)
    started: datetime | None = None
    max_tasks: int = 1000
    file_writes: threading.Lock = field(default_factory=threading.Lock)
    """One workflow file write at a time in this process: the `If-Match` check, the write and
    the refresh of one request must not interleave with another's, or both could pass the
    same check."""

    @property
    def zone(self) -> ZoneInfo:
        """The time zone cron rules are read in (`timezone`)."""
        return ZoneInfo(self.timezone)

    @property
    def counters(self) -> Counters:
        """The taskmaster's live counters (set when the service follows it)."""
        return self.liveness.counters

    @property
    def folder(self) -> Path:
        """The workflow folder every `{file}` key is relative to."""
        return self.cache.workflow_folder


def context(request: Request) -> ApiContext:
    """A FastAPI dependency: the context of the app serving this request."""
    return request.app.state.context


Ctx = Annotated[ApiContext, Depends(context)]
"""A route's parameter `ctx: Ctx` receives the `ApiContext`."""
