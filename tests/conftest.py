"""Shared fixtures: real files under tmp_path, real caches, a fixed clock."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cache import Cache, MemoryCache, SQLiteCache
from flowlord.state import MemoryTaskStore, SQLiteTaskStore, TaskStore

pytest_plugins = ["tests.web.browser", "tests.redis_server"]
"""The browser fixtures (`chromium`, `page`): Chromium starts only for a test that asks."""

FIXED_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TESTDATA = Path(__file__).resolve().parent.parent / "testdata"


def pytest_configure(config: pytest.Config) -> None:
    """Every `flowlord run` a test starts serves no API unless the test asks (`--port N`):
    two runs at once would both want port 8080."""
    os.environ.setdefault("FLOWLORD_PORT", "0")


def fixed_now() -> datetime:
    return FIXED_NOW


START = FIXED_NOW


class Clock:
    """The stores' clock: fixed until a test moves it."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[TaskStore]:
    """Each TaskStore, for the tests of the contract they share."""
    if request.param == "memory":
        made: TaskStore = MemoryTaskStore(now=clock)
    else:
        made = SQLiteTaskStore(tmp_path / "flowlord.db", now=clock)
    yield made
    made.close()


def write(root: Path, key: str, text: str) -> Path:
    """Write a workflow file at `root/key`, dedenting the text."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


CacheFactory = Callable[[Path], Cache]


@pytest.fixture(params=["memory", "sqlite"])
def make_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheFactory]:
    """Builds a cache of each kind over a workflow path; the contract suite runs on both."""
    made: list[Cache] = []

    def build(workflow_path: Path) -> Cache:
        if request.param == "memory":
            cache: Cache = MemoryCache(workflow_path, now=fixed_now)
        else:
            cache = SQLiteCache(workflow_path, tmp_path / "cache.db", now=fixed_now)
        made.append(cache)
        return cache

    yield build
    for cache in made:
        cache.close()


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands read ./flowlord.toml and write ./flowlord.db by default: not in the checkout,
    and with no FLOWLORD_* setting of the machine running the tests (but FLOWLORD_PORT=0)."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith("FLOWLORD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("FLOWLORD_PORT", "0")  # no API unless asked: port 8080 is shared
    return tmp_path
