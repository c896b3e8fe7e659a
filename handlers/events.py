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
`flowlord pause`, another `flowlord run`) are announced (`handlers.poller`). A comment line
keeps an idle stream open through proxies; the stream ends when the hub closes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from handlers.context import Ctx
from handlers.hub import CLOSED, Event, EventHub

router = APIRouter(tags=["events"])

KEEPALIVE = 15.0  # seconds of silence before a comment line: proxies cut idle streams at 30-60 s
RETRY_MS = 2000  # how long a browser waits before it reconnects to a stream that ended


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
