"""A real API server on a free port over a real database and workflow folder, in process:
`served` gives the service (its context, its hub) and an `Api` client with the admin token."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cache import RefreshError, SQLiteCache
from flowlord.config import RunConfig
from flowlord.loop import Counters
from flowlord.state import SQLiteTaskStore
from handlers.service import ApiService
from tests.api.client import TOKEN, Api
from tests.conftest import TESTDATA, Clock


@dataclass
class Served:
    """A running API: its service, the live cache it refreshes, a task store of its own for
    the test to arrange records with, the folder and the clock."""

    service: ApiService
    cache: SQLiteCache
    store: SQLiteTaskStore
    folder: Path
    db: Path
    clock: Clock
    api: Api
    changes: list[list[str]]

    @property
    def anonymous(self) -> Api:
        return Api(self.api.url)


def serve(tmp_path: Path, *, token: str = TOKEN, workflows: Path | None = None) -> Iterator[Served]:
    """A server over a copy of `workflows` (testdata/workflows by default)."""
    folder = tmp_path / "wf"
    shutil.copytree(workflows or TESTDATA / "workflows", folder)
    db = tmp_path / "flowlord.db"
    clock = Clock()
    config = RunConfig(workflows=str(folder), db=str(db), port=0, admin_token=token)
    cache = SQLiteCache(folder, db, now=clock)
    with contextlib.suppress(RefreshError):
        cache.refresh()
    store = SQLiteTaskStore(db, now=clock)
    service = ApiService(config, cache, now=clock)
    changes: list[list[str]] = []
    service.follow(changes.append, lambda err: None, Counters(), lambda: True)
    service.loaded()
    assert service.start().serving(30), "the API did not start"
    try:
        yield Served(service, cache, store, folder, db, clock, Api(service.url, token), changes)
    finally:
        service.stop()
        store.close()
        cache.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    yield from serve(tmp_path)


@pytest.fixture
def api(served: Served) -> Api:
    return served.api
