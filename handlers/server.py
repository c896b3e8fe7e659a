"""Serving the API beside the taskmaster: uvicorn in a thread of its own, on a socket bound
before the workflows load (`handlers.sockets`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

from handlers.sockets import address

log = logging.getLogger("flowlord.api")

STOP_TIMEOUT = 1.0


class _Server(uvicorn.Server):
    """uvicorn's server, woken at once by `stop()`: its own loop looks at `should_exit` only
    every 0.1 s, which every test of a real server and every shutdown would wait for."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # uvicorn's tick: date header, limits
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def wake(self) -> None:
        """Ask it to stop, from any thread."""
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has ended already
                self._loop.call_soon_threadsafe(self._wake.set)


class ApiServer:
    """uvicorn serving `app` on `sock` in a daemon thread until `stop()`."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self._sock = sock
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=STOP_TIMEOUT, server_header=False,
        )  # fmt: skip
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._serve, name="flowlord-api", daemon=True)

    @property
    def url(self) -> str:
        return address(self._sock)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2 * STOP_TIMEOUT) -> None:
        """Stop accepting, end the open requests (streams included), and close the socket."""
        self._server.wake()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the API server did not stop within %.1f s", timeout)
        self._sock.close()

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except Exception:  # the API failing must never take the taskmaster with it
            log.exception("the API server stopped unexpectedly")
