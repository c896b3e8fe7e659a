"""GET /api/events through a real server: each kind of change, made the way a user or another
process makes it, reaches an open stream within a second; bursts are coalesced; a client that
leaves is forgotten; the stream ends when the server stops, in process and in `flowlord run`.

Streams are read with http.client, each read bounded by the socket's timeout: no test sleeps."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flowlord import controls
from flowlord.state import NewRecord, SQLiteTaskStore
from handlers.events import RETRY_MS, stream
from handlers.hub import Event, EventHub
from handlers.poller import BURST, ChangePoller
from tests.api.client import Api, free_port
from tests.api.conftest import Served
from tests.conftest import TESTDATA
from tests.processes import ROOT, flowlord_run, wait_until
from workflow import Task
from workflow.state import Origin, State

WITHIN = 1.0
"""DESIGN §6: a change is announced within a second, whichever process made it."""


@dataclass(frozen=True, slots=True)
class Sse:
    name: str
    data: dict[str, object]


class Stream:
    """One /api/events client. Opened once its first line came: subscribed from then on."""

    def __init__(self, api: Api) -> None:
        self._connection = http.client.HTTPConnection(api.host, api.port, timeout=10)
        self._connection.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
        self._response = self._connection.getresponse()
        assert self._response.status == 200
        assert self._response.getheader("content-type", "").startswith("text/event-stream")
        deadline = time.monotonic() + 10
        assert [self._line(deadline), self._line(deadline)] == [f"retry: {RETRY_MS}", ""]

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def next(self, deadline: float) -> Sse | None:
        """The next event before `deadline` (comments skipped); None when the stream ended."""
        name, data = "message", []
        while (line := self._line(deadline)) is not None:
            if line == "" and data:
                return Sse(name, json.loads("\n".join(data)))
            field, _, value = line.partition(":")
            if field == "event":
                name = value.strip()
            elif field == "data":
                data.append(value.removeprefix(" "))
        return None

    def wait_for(
        self, name: str, match: Callable[[dict[str, object]], bool] = lambda _: True
    ) -> dict[str, object]:
        """The data of the first `name` event that `match`es, which must come within 1 s."""
        deadline = time.monotonic() + WITHIN
        try:
            while (event := self.next(deadline)) is not None:
                if event.name == name and match(event.data):
                    return event.data
        except TimeoutError:
            pass
        pytest.fail(f"no matching {name} event within {WITHIN} s")

    def _line(self, deadline: float) -> str | None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self._connection.sock.settimeout(left)
        raw = self._response.readline()
        return raw.decode().removesuffix("\n") if raw else None


@pytest.fixture
def events(served: Served) -> Iterator[Stream]:
    opened = Stream(served.api)
    yield opened
    opened.close()


def new_record(n: int, *, workflow: str = "etl.toml", state: State = State.QUEUED) -> NewRecord:
    task = Task(type="extract", info=f"?n={n}", id=f"run-{n}")
    return NewRecord(task=task, workflow=workflow, phase="extract", origin=Origin.MANUAL,
                     origin_key=f"test|{n}", state=state)  # fmt: skip


def add(store: SQLiteTaskStore, *numbers: int) -> list[int]:
    with store.transaction() as tx:
        made = tx.add([new_record(n) for n in numbers], actor="test", reason="arranged")
    return [record.rec for record in made if record is not None]


def test_a_refreshed_file_is_a_workflow_changed_event(served: Served, events: Stream) -> None:
    shutil.copy(served.folder / "etl.toml", served.folder / "copy.toml")
    assert served.service.refresh(["copy.toml"]).changed == ["copy.toml"]
    assert events.wait_for("workflow.changed") == {"files": ["copy.toml"]}
    (served.folder / "copy.toml").write_text("[[Phase]\n")
    served.service.refresh(["copy.toml"])
    data = events.wait_for("workflow.changed")
    assert data["files"] == [] and list(data["errors"]) == ["copy.toml"]  # type: ignore[arg-type]


def test_records_made_and_moved_by_another_connection_are_task_events(
    served: Served, events: Stream
) -> None:
    [rec] = add(served.store, 1)
    made = events.wait_for("task.changed", lambda d: d["rec"] == rec)
    assert (made["from_state"], made["to_state"], made["actor"]) == ("", "queued", "test")
    assert (made["workflow"], made["phase"], made["id"], made["info"]) == (
        "etl.toml", "extract", "run-1", "?n=1",
    )  # fmt: skip
    with served.store.transaction() as tx:
        tx.move(rec, State.SENT, actor="flowlord", reason="sent")
    moved = events.wait_for("task.changed", lambda d: d["rec"] == rec)
    assert (moved["from_state"], moved["to_state"], moved["reason"]) == ("queued", "sent", "sent")
    assert moved["transition"] > made["transition"]  # type: ignore[operator]


def test_a_pause_is_a_control_event(served: Served, events: Stream) -> None:
    with controls.known_phases(served.db) as phases_of:
        controls.pause(served.store, phases_of, "etl.toml", reason="maintenance", actor="ann")
    data = events.wait_for("control.changed")
    assert {k: data[k] for k in ("workflow", "phase", "to_enabled", "reason", "actor")} == {
        "workflow": "etl.toml", "phase": "", "to_enabled": False, "reason": "maintenance",
        "actor": "ann",
    }  # fmt: skip


def test_an_alert_is_an_alert_event(served: Served, events: Stream) -> None:
    with served.store.transaction() as tx:
        tx.alert("alert", "the disk is full", workflow="etl.toml", phase="extract")
    data = events.wait_for("alert")
    assert {k: data[k] for k in ("kind", "workflow", "phase", "message")} == {
        "kind": "alert", "workflow": "etl.toml", "phase": "extract",
        "message": "the disk is full",
    }  # fmt: skip


def test_a_burst_is_coalesced_into_one_counted_event(served: Served, events: Stream) -> None:
    total = 3 * BURST
    add(served.store, *range(total))
    seen: list[dict[str, object]] = []
    while sum(int(d.get("coalesced", 1)) for d in seen) < total:  # type: ignore[call-overload]
        seen.append(events.wait_for("task.changed"))
    assert len(seen) == BURST + 1
    assert seen[-1]["coalesced"] == total - BURST


def test_a_client_that_leaves_is_unsubscribed(served: Served) -> None:
    hub = served.service.hub
    first = Stream(served.api)
    assert hub.subscribers == 1
    first.close()
    wait_until(lambda: hub.subscribers == 0, "the stream to unsubscribe")


def test_the_stream_ends_when_the_service_stops(served: Served, events: Stream) -> None:
    started = time.monotonic()
    served.service.stop()
    assert events.next(started + WITHIN) is None
    assert served.service.hub.subscribers == 0


def test_the_stream_says_keep_alive_when_idle_and_ends_when_the_hub_closes() -> None:
    async def scenario() -> list[str]:
        hub = EventHub()
        lines = stream(hub, keepalive=0.05)
        read = [await anext(lines), await asyncio.wait_for(anext(lines), 5)]
        hub.publish("alert", {"seq": 1})
        read.append(await asyncio.wait_for(anext(lines), 5))
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(lines), 5)
        assert hub.subscribers == 0
        return read

    assert asyncio.run(scenario()) == [
        f"retry: {RETRY_MS}\n\n", ": keep-alive\n\n", 'event: alert\ndata: {"seq":1}\n\n',
    ]  # fmt: skip


def test_the_poller_skips_what_came_before_a_listener_and_coalesces_bursts(
    served: Served,
) -> None:
    """The poller driven by hand (its thread never wakes): no backlog, bursts of `burst`."""
    hub = EventHub()
    poller = ChangePoller(str(served.db), hub, now=served.clock, every=3600, burst=3).start()

    async def scenario() -> list[Event]:
        add(served.store, 1, 2)
        poller.poll()  # nobody listens: passed over
        queue = hub.subscribe()
        poller.poll()  # nothing committed since: nothing read
        add(served.store, *range(10, 15))
        poller.poll()
        got = [await asyncio.wait_for(queue.get(), 5) for _ in range(4)]
        assert queue.empty()
        return got

    try:
        got = asyncio.run(scenario())
    finally:
        poller.stop()
    assert [(e.name, e.data.get("id"), e.data.get("coalesced")) for e in got] == [
        ("task.changed", "run-10", None), ("task.changed", "run-11", None),
        ("task.changed", "run-12", None), ("task.changed", None, 2),
    ]  # fmt: skip


def test_openapi_describes_the_route_as_an_event_stream(served: Served) -> None:
    document = served.api.get("/openapi.json").json
    content = document["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]


@pytest.mark.slow
def test_a_real_run_streams_a_cli_pause_and_stops_at_once_with_a_stream_open(
    tmp_path: Path,
) -> None:
    shutil.copytree(TESTDATA / "workflows", tmp_path / "wf")
    api = Api(f"http://127.0.0.1:{free_port()}")
    with flowlord_run(tmp_path, "run.log", "--port", str(api.port)) as run:
        wait_until(lambda: _ready(api), "the API", run)
        events = Stream(api)
        paused = subprocess.run(
            [sys.executable, "-m", "flowlord", "pause", "etl.toml", "--reason", "maintenance"],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert paused.returncode == 0, paused.stderr
        assert events.wait_for("control.changed")["workflow"] == "etl.toml"
        began = time.monotonic()
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=10) == 0
        assert time.monotonic() - began < 2.0
        assert events.next(time.monotonic() + WITHIN) is None  # ended, not cut off
        events.close()


def _ready(api: Api) -> bool:
    try:
        return api.get("/readyz", timeout=2).status == 200
    except OSError:  # not listening yet
        return False
