"""Two rules every request passes before any route: bodies over 1 MB are refused (413) before
they are read whole, and every write attempt is logged with who, what and its outcome."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handlers.web.render import HEADERS as PAGE_HEADERS

MAX_BODY = 1024 * 1024
READS = frozenset({"GET", "HEAD", "OPTIONS"})

audit_log = logging.getLogger("flowlord.audit")


class BodyLimit:
    """Reads at most `MAX_BODY` bytes of a request: a larger `Content-Length`, or a streamed
    body that grows past it, gets 413 and the route never runs."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length and (not length.isdigit() or int(length[:12]) > self.limit):
            await _too_large(scope, send, self.limit)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await _too_large(scope, send, self.limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    """The API's JSON error; a dashboard form gets a page saying the same, with a way back."""
    message = f"the body is over {limit // 1024 // 1024} MB"
    headers = []
    if scope["path"].startswith("/web"):
        kind = b"text/html; charset=utf-8"
        headers = [(name.lower().encode(), value.encode()) for name, value in PAGE_HEADERS.items()]
        body = (f"<!doctype html><title>413</title><h1>413</h1><p>The form is too large: "
                f"{message}.</p><p><a href=\"/web/\">Back to the overview</a></p>")  # fmt: skip
    else:
        kind, body = b"application/json", json.dumps({"error": message, "field": "body"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind),
                            (b"content-length", str(len(body.encode())).encode()),
                            *headers]})  # fmt: skip
    await send({"type": "http.response.body", "body": body.encode()})


class Audit:
    """Logs every write attempt (any method but GET, HEAD, OPTIONS), allowed or not: method,
    path, client, whether a token was given, and the status it got."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client") or ("unknown", 0)
            token = "with a token" if _has_token(scope) else "without a token"
            outcome = "allowed" if 200 <= status < 300 else "refused" if status else "cut off"
            audit_log.info(
                "write %s %s from %s %s: %s %d (%.0f ms)", scope["method"], scope["path"],
                client[0], token, outcome, status, (time.monotonic() - started) * 1000,
            )  # fmt: skip


def _has_token(scope: Scope) -> bool:
    return any(name == b"authorization" for name, _ in scope["headers"])
