"""Serving the API beside the taskmaster: uvicorn in a thread of its own, on a socket bound
before the workflows load (so a port in use fails the start at once, with the setting named)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("flowlord.api")

STOP_TIMEOUT = 1.0


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv4 or IPv6). Raises `OSError` (address in use,
    no such address) for the caller to report against the setting."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.set_inheritable(False)
    except OSError:
        sock.close()
        raise
    return sock


def address(sock: socket.socket) -> str:
    """`http://host:port` of a listening socket, for the log."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class ApiServer:
    """uvicorn serving `app` on `sock` in a daemon thread until `stop()`."""

    def __init__(self, app: FastAPI, sock: socket.socket) -> None:
        self._sock = sock
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=STOP_TIMEOUT, server_header=False,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="flowlord-api", daemon=True)

    @property
    def url(self) -> str:
        return address(self._sock)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2 * STOP_TIMEOUT) -> None:
        """Stop accepting, end the open requests (streams included), and close the socket."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the API server did not stop within %.1f s", timeout)
        self._sock.close()

    def _serve(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except Exception:  # the API failing must never take the taskmaster with it
            log.exception("the API server stopped unexpectedly")
