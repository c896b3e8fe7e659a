"""A real local HTTP endpoint for notification tests: it records every POST, and can be told to
answer an error status, to hang, or to be down (its port closed)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT = 5.0


@dataclass(frozen=True, slots=True)
class Post:
    path: str
    headers: dict[str, str]
    body: dict[str, object]


class Endpoint:
    """Answers `status` (200 unless told otherwise) and keeps the 2xx-answered POSTs in
    `posts`; `attempts` counts every POST. While `hanging` is set it holds each request until
    the endpoint stops."""

    def __init__(self) -> None:
        self.status = 200
        self.hanging = threading.Event()
        self.posts: list[Post] = []
        self.attempts = 0
        self._released = threading.Event()
        self._arrived = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        """Listen (again, on the same port once it has one)."""
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        """Close the port: a POST is refused at once."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        self._released.set()
        self.down()

    def bodies(self) -> list[dict[str, object]]:
        with self._arrived:
            return [post.body for post in self.posts]

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict[str, object]]:
        """The bodies, once at least `count` have arrived; fails after `timeout` seconds."""
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: len(self.posts) >= count, timeout)
            assert arrived, f"{len(self.posts)} POST(s) arrived, expected {count}"
            return [post.body for post in self.posts]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.attempts += 1
                if endpoint.hanging.is_set():
                    endpoint._released.wait(30)
                    return
                with endpoint._arrived:
                    post = Post(self.path, dict(self.headers.items()), json.loads(body))
                    if 200 <= endpoint.status < 300:
                        endpoint.posts.append(post)
                    endpoint._arrived.notify_all()
                self.send_response(endpoint.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    found = Endpoint()
    try:
        yield found
    finally:
        found.stop()
