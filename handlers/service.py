"""The API as `flowlord run` serves it: bound at start, its own database connections, and the
hooks that tie it to the running service (refresh now, who leads, workflow changes as events,
the taskmaster's counters and the process's timings for `/metrics`).

FastAPI and its app cost ~0.7 s to import and build: that happens in a thread of its own, so the
taskmaster loads and leads meanwhile. What the service must have at once (the socket, the
connections, the hub, the refresh and follow hooks) imports nothing of the web.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from cache import RefreshError, SQLiteCache
from cache.watcher import OnChange, OnError, log_error
from flowlord.config import RunConfig
from flowlord.loop import Counters
from flowlord.metrics import Metrics
from flowlord.state import SQLiteTaskStore
from handlers.hub import EventHub
from handlers.live import Liveness, Refreshed
from handlers.poller import ChangePoller
from handlers.sockets import address, listen

if TYPE_CHECKING:
    from handlers.context import ApiContext
    from handlers.server import ApiServer

log = logging.getLogger("flowlord.api")

STOP_WAIT = 1.5
"""How long `stop()` waits for a web part still being built (SIGTERM must end within 2 s)."""


class ApiService:
    """Binds `config.host:config.port` at once (`OSError` if it cannot); `start()` builds the
    web part in a thread and serves until `stop()`. `live` is the running cache: refreshes go
    through it, so the taskmaster reschedules what they change. `metrics` is the process's
    (refreshes through the API are timed in it too); without one the API keeps its own."""

    def __init__(
        self,
        config: RunConfig,
        live: SQLiteCache,
        *,
        now: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self._config = config
        self._live = live
        self._now = now
        self.metrics = metrics or Metrics()
        self._on_change: OnChange = lambda _keys: None
        self._on_error: OnError = log_error
        self.hub = EventHub()
        self.liveness = Liveness()
        self.context: ApiContext | None = None
        self._server: ApiServer | None = None
        self._serving = threading.Event()
        self._stopping = threading.Event()
        self._builder = threading.Thread(target=self._build, name="flowlord-api-start", daemon=True)
        self._starting = threading.Lock()
        self._began = False
        with contextlib.ExitStack() as opened:
            self._sock = listen(config.host, config.port)
            opened.callback(self._sock.close)
            self._reader = SQLiteCache(config.workflows, config.db)
            opened.callback(self._reader.close)
            self._store = SQLiteTaskStore(config.db, now=now)
            opened.callback(self._store.close)
            self._poller = ChangePoller(config.db, self.hub, now=now)
            self._closing = opened.pop_all()

    @property
    def url(self) -> str:
        return address(self._sock)

    def start(self) -> ApiService:
        """Read the database's changes from now on, and build and start the web part in a
        thread (`serving()` waits for it). Any thread may call it; the first call starts."""
        with self._starting:
            if not self._began and not self._stopping.is_set():
                self._began = True
                self._poller.start()
                self._builder.start()
        return self

    def serving(self, timeout: float | None = None) -> bool:
        """Wait until the API answers requests; False if it did not within `timeout`."""
        return self._serving.wait(timeout)

    def _build(self) -> None:
        """Import the web part, make the app, serve; a failure is logged and leaves the
        taskmaster running without its API."""
        try:
            from handlers.app import create_app
            from handlers.context import ApiContext
            from handlers.server import ApiServer

            config = self._config
            self.context = ApiContext(
                cache=self._reader, store=self._store, db_path=config.db,
                timezone=config.timezone, admin_token=config.admin_token, now=self._now,
                refresh=self.refresh, liveness=self.liveness, hub=self.hub,
                started=self._now(), max_tasks=config.max_tasks, metrics=self.metrics,
            )  # fmt: skip
            if self._stopping.is_set():
                return
            self._server = ApiServer(create_app(self.context), self._sock).start()
        except Exception:
            log.exception("the API could not start; flowlord goes on without it")
            return
        self._serving.set()
        log.info("API serving on %s", self.url)

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
        self.liveness.counters = counters
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
        with self._starting:
            self._stopping.set()
        self._poller.stop()
        self.hub.close()
        if self._builder.is_alive():
            self._builder.join(STOP_WAIT)
        if self._server is not None:
            self._server.stop()
        if not self._builder.is_alive():  # else its thread may still use them: the exit ends it
            self._closing.close()
