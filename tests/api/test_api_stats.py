"""`GET /api/stats` through a real server: the figures of `flowlord stats --json` and the records
of each workflow file created within a window, read as `/api/tasks` reads `since`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowlord.task_commands import plain
from tests.api.client import Api
from tests.api.conftest import Served
from tests.conftest import START
from tests.records import add_record
from workflow import Task
from workflow.state import State

ARRANGED = [  # (age at the API's clock, workflow file, phase, state)
    (timedelta(days=2), "etl.toml", "extract", State.COMPLETE),
    (timedelta(hours=24), "etl.toml", "extract", State.QUEUED),
    (timedelta(hours=1), "etl.toml", "transform:orders", State.HELD),
    (timedelta(hours=1), "etl.toml", "extract", State.QUEUED),
    (timedelta(minutes=10), "reports/daily.toml", "report", State.SENT),
    (timedelta(minutes=5), "", "adhoc", State.FAILED),
]


@pytest.fixture
def arranged(served: Served) -> Served:
    """The records of ARRANGED, each created at its age back from START; the clock at START."""
    for n, (age, workflow, phase, state) in enumerate(ARRANGED):
        served.clock.at = START - age
        task_type, _, job = phase.partition(":")
        task = Task(type=task_type, job=job, id=f"r{n}")
        made = state if state is State.HELD or state is State.QUEUED else State.SENT
        record = add_record(served.store, task, workflow=workflow, phase=phase, state=made)
        if made is not state:
            with served.store.transaction() as tx:
                tx.move(record.rec, state, actor="worker", reason=f"done: {state.value}")
    served.clock.at = START
    return served


def stats(api: Api, query: str = "") -> dict[str, object]:
    reply = api.get(f"/api/stats{query}")
    assert reply.status == 200, reply.body
    assert isinstance(reply.json, dict)
    return reply.json


def test_stats_count_the_last_day_by_workflow_and_state(api: Api, arranged: Served) -> None:
    shown = stats(api)
    assert shown["since"] == "2026-11-20T12:00:00Z"  # 24h back from the API's clock
    assert shown["workflows"] == {
        "": {"failed": 1},
        "etl.toml": {"held": 1, "queued": 2},  # the one made 24h ago counts: since is inclusive
        "reports/daily.toml": {"sent": 1},
    }
    assert list(shown["workflows"]) == ["", "etl.toml", "reports/daily.toml"]  # type: ignore[arg-type]


def test_the_figures_are_those_of_flowlord_stats(api: Api, arranged: Served) -> None:
    shown = stats(api)
    figures = plain(arranged.store.stats())
    assert {name: shown[name] for name in figures} == figures
    assert set(shown) == {*figures, "since", "workflows"}
    assert figures["by_age"] == {"24h": 4, "7d": 2, "30d": 0, "older": 0}


@pytest.mark.parametrize(
    ("query", "since", "workflows"),
    [
        ("?since=1h", "2026-11-21T11:00:00Z",
         {"": {"failed": 1}, "etl.toml": {"held": 1, "queued": 1},
          "reports/daily.toml": {"sent": 1}}),
        ("?since=6m", "2026-11-21T11:54:00Z", {"": {"failed": 1}}),
        ("?since=2026-11-21T11:50:00Z", "2026-11-21T11:50:00Z",
         {"": {"failed": 1}, "reports/daily.toml": {"sent": 1}}),
        ("?since=2026-11-21T12:50:00%2B01:00", "2026-11-21T11:50:00Z",
         {"": {"failed": 1}, "reports/daily.toml": {"sent": 1}}),
        ("?since=720h", "2026-10-22T12:00:00Z",
         {"": {"failed": 1}, "etl.toml": {"complete": 1, "held": 1, "queued": 2},
          "reports/daily.toml": {"sent": 1}}),
        ("?since=2026-11-21T12:00:01Z", "2026-11-21T12:00:01Z", {}),
        ("?since=", "2026-11-20T12:00:00Z",  # blank, as a form sends it: the default
         {"": {"failed": 1}, "etl.toml": {"held": 1, "queued": 2},
          "reports/daily.toml": {"sent": 1}}),
    ],
)  # fmt: skip
def test_since_sets_the_window(
    api: Api, arranged: Served, query: str, since: str, workflows: dict[str, dict[str, int]]
) -> None:
    shown = stats(api, query)
    assert (shown["since"], shown["workflows"]) == (since, workflows)
    assert shown["states"] == plain(arranged.store.stats())["states"]  # the window is theirs only


def test_an_empty_database_has_no_workflow_counts(api: Api, served: Served) -> None:
    shown = stats(api)
    assert shown["workflows"] == {}
    assert shown["alerts"] == 0 and set(shown["states"].values()) == {0}  # type: ignore[union-attr]


BAD_SINCE = [
    "yesterday", "2026-11-21", "-99999999h", "99999999999999999999h",
    "0001-01-01T00:00:00%2B01:00", "9999-12-31T23:59:59-01:00", "%00",
]  # fmt: skip


@pytest.mark.parametrize("since", BAD_SINCE)
def test_a_bad_since_is_a_422_naming_it(api: Api, since: str) -> None:
    reply = api.get(f"/api/stats?since={since}")
    assert reply.status == 422, reply.body
    error = reply.error()
    assert error["field"] == "since"
    assert str(error["error"]).startswith("since: ")
