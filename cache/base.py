"""What every file-backed cache shares: its source, its loader, refreshes and the watcher."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from cache.loader import FileStore, Loader, RefreshOutcome, RefreshStats
from cache.source import WorkflowSource
from cache.watcher import (
    DEFAULT_SETTINGS,
    OnChange,
    OnError,
    Refreshable,
    Watcher,
    WatchSettings,
    log_error,
)


class FileBackedCache:
    """Loads a `WorkflowSource` into a `FileStore`; subclasses answer the lookups.

    Refreshes are serialized (the watch thread and callers may refresh at once); the store
    keeps each write whole for readers.
    """

    def __init__(
        self, source: WorkflowSource, store: FileStore, *, now: Callable[[], datetime]
    ) -> None:
        self._source = source
        self._loader = Loader(source, store, now=now)
        self._refresh_lock = threading.Lock()
        self._watchers: list[Watcher] = []
        self.last_refresh = RefreshStats()

    def refresh(self) -> list[str]:
        """Load changed files; keys changed (removed ones prefixed `-`); `RefreshError` after
        loading the good files if any file failed."""
        with self._refresh_lock:
            return self._record(self._loader.refresh())

    def refresh_files(self, keys: Iterable[str]) -> list[str]:
        """Like `refresh`, for just these keys (as a watch event names them): each is hashed,
        and removed if its file is gone."""
        with self._refresh_lock:
            return self._record(self._loader.refresh_keys(keys))

    def is_dir(self) -> bool:
        """True when the workflow path is a folder (loaded recursively)."""
        return self._source.is_dir

    @property
    def workflow_path(self) -> Path:
        """The workflow folder, or the one workflow file, as given."""
        return self._source.path

    @property
    def workflow_folder(self) -> Path:
        """The folder keys are relative to (the file's folder in single-file mode)."""
        return self._source.path if self._source.is_dir else self._source.path.parent

    def watch(
        self,
        on_change: OnChange,
        *,
        on_error: OnError = log_error,
        settings: WatchSettings = DEFAULT_SETTINGS,
        refresh_with: Refreshable | None = None,
    ) -> Watcher:
        """Follow the files in a background thread until `stop()` or `close()`.

        Each batch of file events refreshes the files it names, then `on_change(keys)` runs
        (in the watch thread). Load failures go to `on_error` and never end the watch.
        `refresh_with` wraps this cache's refreshes (to time them, say); it must refresh
        this cache.
        """
        watcher = Watcher(refresh_with or self, self._source, on_change, on_error=on_error,
                          settings=settings)  # fmt: skip
        self._watchers.append(watcher)
        return watcher.start()

    def _stop_watching(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self._watchers.clear()

    def _record(self, outcome: RefreshOutcome) -> list[str]:
        self.last_refresh = outcome.stats
        return outcome.result()
