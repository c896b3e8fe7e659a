"""The API as `flowlord run` serves it: bound at start, its own database connections, and the
hooks that tie it to the running service (refresh now, who leads, workflow changes as events,
the taskmaster's counters and the process's timings for `/metrics`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from cache import RefreshError, SQLiteCache
from cache.watcher import OnChange, OnError, log_error
from flowlord.config import RunConfig
from flowlord.loop import Counters
from flowlord.metrics import Metrics
from flowlord.state import SQLiteTaskStore
from handlers.app import create_app
from handlers.context import ApiContext, Liveness, Refreshed
from handlers.events import ChangePoller
from handlers.hub import EventHub
from handlers.server import ApiServer, listen

log = logging.getLogger("flowlord.api")


class ApiService:
    """Binds `config.host:config.port` at once (`OSError` if it cannot), then serves from
    `start()` to `stop()`. `live` is the running cache: refreshes go through it, so the
    taskmaster reschedules what they change. `metrics` is the process's (refreshes through
    the API are timed in it too); without one the API keeps its own."""

    def __init__(
        self,
        config: RunConfig,
        live: SQLiteCache,
        *,
        now: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self._live = live
        self.metrics = metrics or Metrics()
        self._on_change: OnChange = lambda _keys: None
        self._on_error: OnError = log_error
        self.hub = EventHub()
        self.liveness = Liveness()
        with contextlib.ExitStack() as opened:
            self._sock = listen(config.host, config.port)
            opened.callback(self._sock.close)
            self._reader = SQLiteCache(config.workflows, config.db)
            opened.callback(self._reader.close)
            self._store = SQLiteTaskStore(config.db, now=now)
            opened.callback(self._store.close)
            self.context = ApiContext(
                cache=self._reader, store=self._store, db_path=config.db, zone=config.zone,
                timezone=config.timezone, admin_token=config.admin_token, now=now,
                refresh=self.refresh, liveness=self.liveness, hub=self.hub, started=now(),
                max_tasks=config.max_tasks, metrics=self.metrics,
            )  # fmt: skip
            self._server = ApiServer(create_app(self.context), self._sock)
            self._poller = ChangePoller(config.db, self.hub, now=now)
            self._closing = opened.pop_all()

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> ApiService:
        """Read the database's changes (from now on) and serve."""
        self._poller.start()
        self._server.start()
        log.info("API serving on %s", self._server.url)
        return self

    def follow(
        self,
        on_change: OnChange,
        on_error: OnError,
        counters: Counters,
        leading: Callable[[], bool],
    ) -> tuple[OnChange, OnError]:
        """The watcher's callbacks, wrapped to publish `workflow.changed` events; refreshes
        asked through the API call the same ones. `counters` and `leading` are the
        taskmaster's, for `/metrics` and `/readyz`."""
        self.context.counters = counters
        self.liveness.leading = leading

        def changed(keys: list[str]) -> None:
            self.hub.publish("workflow.changed", {"files": keys})
            on_change(keys)

        def failed(err: Exception) -> None:
            if isinstance(err, RefreshError):
                self.hub.publish("workflow.changed", {"files": [], "errors": err.errors})
            on_error(err)

        self._on_change, self._on_error = changed, failed
        return changed, failed

    def refresh(self, keys: Iterable[str] | None = None) -> Refreshed:
        """Refresh the live cache now (all files, or `keys`) and tell whoever follows it."""
        live = self._live
        try:
            changed = self.metrics.timed_refresh(
                live.refresh if keys is None else lambda: live.refresh_files(keys)
            )
            errors: dict[str, str] = {}
        except RefreshError as err:
            changed, errors = err.changed, err.errors
            self._on_error(err)
        except FileNotFoundError as err:  # the workflow folder itself is gone: nothing removed
            changed, errors = [], {".": str(err)}
            self._on_error(err)
        if changed:
            self._on_change(changed)
        return Refreshed(changed=changed, errors=errors)

    def loaded(self) -> None:
        """The workflows are loaded: `/readyz` answers 200 from now on."""
        self.liveness.loaded.set()

    def stop(self) -> None:
        """End the event streams, stop serving, close the connections (twice is harmless)."""
        self._poller.stop()
        self.hub.close()
        self._server.stop()
        self._closing.close()
