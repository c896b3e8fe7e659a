"""What every file-backed cache shares: its source, its loader and the refresh calls."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from cache.loader import FileStore, Loader, RefreshOutcome, RefreshStats
from cache.source import WorkflowSource


class FileBackedCache:
    """Loads a `WorkflowSource` into a `FileStore`; subclasses answer the lookups."""

    def __init__(
        self, source: WorkflowSource, store: FileStore, *, now: Callable[[], datetime]
    ) -> None:
        self._source = source
        self._loader = Loader(source, store, now=now)
        self.last_refresh = RefreshStats()

    def refresh(self) -> list[str]:
        """Load changed files; keys changed (removed ones prefixed `-`); `RefreshError` after
        loading the good files if any file failed."""
        return self._record(self._loader.refresh())

    def refresh_files(self, keys: Iterable[str]) -> list[str]:
        """Like `refresh`, for just these keys (as a watch event names them): each is hashed,
        and removed if its file is gone."""
        return self._record(self._loader.refresh_keys(keys))

    def is_dir(self) -> bool:
        """True when the workflow path is a folder (loaded recursively)."""
        return self._source.is_dir

    def _record(self, outcome: RefreshOutcome) -> list[str]:
        self.last_refresh = outcome.stats
        return outcome.result()
