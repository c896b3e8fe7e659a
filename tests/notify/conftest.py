"""Fixtures of the notification tests: one database file in tmp_path, a task store on it, a
clock the test moves, and a real local endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlord.state import SQLiteTaskStore
from tests.notify_helpers import Clock
from tests.webhooks import Endpoint, endpoint


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "flowlord.db"


@pytest.fixture
def store(db: Path, clock: Clock) -> Iterator[SQLiteTaskStore]:
    made = SQLiteTaskStore(db, now=clock)
    yield made
    made.close()


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    with endpoint() as made:
        yield made
