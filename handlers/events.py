"""Server-sent events at /api/events (DESIGN §6): what changes, as it changes, from any process.

Each event is `event: <name>` and one `data: <JSON object>` line:

- `workflow.changed`: this process's cache loaded files (its watcher, or a refresh through the
  API): `{"files": [key, ...]}`, a removed file as `-key`; or failed to: `{"files": [],
  "errors": {key: why}}`.
- `task.changed`: a record moved (or was created): the record's columns (`rec`, `id`, `type`,
  `job`, `workflow`, `phase`, `attempt`, `origin`, `result`, times ...), with `from_state`
  ("" when created), `to_state`, `reason`, `actor`, `at` and `transition` (its position).
- `control.changed`: a pause or resume: `seq`, `workflow`, `phase`, `actor`, `reason`,
  `from_enabled`, `to_enabled`, `released`, `discarded`, `at`.
- `alert`: an alert record: `seq`, `kind`, `workflow`, `phase`, `rec`, `message`, `at`.
- When more rows of a kind came in one poll than `BURST`, the first `BURST` are sent and one
  more event of that name stands for the rest: `{"coalesced": n, "through": position}`.
- `lagged`: this client read too slowly and missed events (see `handlers.hub`).

Task, control and alert events come from the database, so those of every process (a CLI
`flowlord pause`, another `flowlord run`) are announced: one `ChangePoller` thread per API reads
past its cursors on its own connection every `EVERY` seconds, but only after `PRAGMA
data_version` says another connection committed, so an idle database costs one pragma a poll.
A comment line keeps an idle stream open through proxies; the stream ends when the hub closes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import apsw
from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from flowlord.notify import sources
from flowlord.state.schema import connect
from handlers.context import Ctx
from handlers.hub import CLOSED, Event, EventHub
from workflow.state import State
from workflow.task import rfc3339

log = logging.getLogger("flowlord.api")

router = APIRouter(tags=["events"])

EVERY = 0.25  # seconds between polls: a change is announced well within DESIGN's second
BURST = 100  # rows of one kind published per poll, the rest as one event: at most ~400/s a kind
KEEPALIVE = 15.0  # seconds of silence before a comment line: proxies cut idle streams at 30-60 s
RETRY_MS = 2000  # how long a browser waits before it reconnects to a stream that ended
_EVERY_STATE = {state.value: "task.changed" for state in State}
_READERS = {
    sources.TRANSITIONS: functools.partial(sources.transitions, events=_EVERY_STATE),
    sources.CONTROLS: sources.controls,
    sources.ALERTS: sources.alerts,
}
_NAMES = {sources.TRANSITIONS: "task.changed", sources.CONTROLS: "control.changed",
          sources.ALERTS: "alert"}  # fmt: skip


class EventStream(StreamingResponse):
    """A stream the OpenAPI document and the Content-Type both call `text/event-stream`."""

    media_type = "text/event-stream"


@router.get(
    "/api/events",
    response_class=EventStream,
    responses={200: {
        "description": "Server-sent events, one JSON object per `data:` line, until the server "
        "stops: `workflow.changed`, `task.changed`, `control.changed`, `alert`.",
        "content": {"text/event-stream": {
            "schema": {"type": "string"},
            "example": 'event: control.changed\ndata: {"workflow": "etl.toml", "phase": "", '
            '"to_enabled": false, "reason": "maintenance"}\n\n',
        }},
    }},
)  # fmt: skip
async def events(ctx: Ctx) -> EventStream:
    """Changes as they happen, each within about a second, whichever process made them."""
    return EventStream(stream(ctx.hub), headers={"Cache-Control": "no-cache",
                                                 "X-Accel-Buffering": "no"})  # fmt: skip


async def stream(hub: EventHub, *, keepalive: float = KEEPALIVE) -> AsyncIterator[str]:
    """The text of one client's stream. Subscribed before its first line (a `retry:` field),
    so a client that has read it misses nothing after; unsubscribed however it ends (the
    client gone, which cancels it, or the hub closed)."""
    queue = hub.subscribe()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is CLOSED:
                return
            yield encode(event)
    finally:
        hub.unsubscribe(queue)


def encode(event: Event) -> str:
    """One event in the wire format (JSON has no raw newline: one `data:` line)."""
    return f"event: {event.name}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"


class ChangePoller:
    """Publishes to `hub` the task transitions, control events and alerts committed after
    `start()`, by any process, until `stop()`; a failing poll is logged and the next one
    goes on. While nobody listens it only moves its cursors, so a client never gets a
    backlog of what happened before it came."""

    def __init__(
        self,
        db_path: str,
        hub: EventHub,
        *,
        now: Callable[[], datetime],
        every: float = EVERY,
        burst: int = BURST,
    ) -> None:
        self._db_path = db_path
        self._hub = hub
        self._now = now
        self._every = every
        self._burst = burst
        self._db: apsw.Connection | None = None
        self._cursors: dict[str, int] = {}
        self._version = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flowlord-events", daemon=True)

    def start(self) -> ChangePoller:
        """Open the connection and set the cursors at the newest rows, then poll."""
        self._db = db = connect(self._db_path)
        self._version = _data_version(db)
        self._cursors = {source: sources.top(db, source) for source in _READERS}
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._db is not None and not self._thread.is_alive():
            self._db.close()
            self._db = None

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.poll()
            except Exception:
                log.exception("reading changes for /api/events failed; trying again")

    def poll(self) -> None:
        """One look: nothing unless another connection committed since the last."""
        db = self._db
        if db is None:
            return
        version = _data_version(db)
        if version == self._version:
            return
        self._version = version
        listening = self._hub.subscribers > 0
        for source in _READERS:
            if listening:
                self._publish(db, source)
            else:
                self._cursors[source] = sources.top(db, source)

    def _publish(self, db: apsw.Connection, source: str) -> None:
        name, read = _NAMES[source], _READERS[source]
        found, cursor = read(db, self._cursors[source], limit=self._burst, now=self._now())
        for event in found:
            self._hub.publish(name, {**event.record, "at": rfc3339(event.at)})
        if len(found) == self._burst:
            passed, cursor = sources.skip(db, source, cursor)
            if passed:
                self._hub.publish(name, {"coalesced": passed, "through": cursor})
        self._cursors[source] = cursor


def _data_version(db: apsw.Connection) -> int:
    return db.execute("PRAGMA data_version").fetchall()[0][0]
