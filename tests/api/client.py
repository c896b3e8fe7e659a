"""A small HTTP client for tests of the API through a real server (http.client: what any
client sends, with no test transport in between)."""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TOKEN = "test-admin-token-0123456789"


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def json(self) -> object:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()

    def error(self) -> dict[str, object]:
        """The API's error body, checked to have its shape."""
        document = self.json
        assert isinstance(document, dict) and isinstance(document.get("error"), str), document
        assert set(document) <= {"error", "field"}, document
        return document


class Api:
    """Requests to one server; `token` is sent as the bearer unless told otherwise."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | bool | None = True,
        timeout: float = 30.0,
    ) -> Reply:
        """`token=True` sends this client's token, a string sends that one, None/False none."""
        sent = dict(headers or {})
        bearer = self.token if token is True else token or None
        if bearer:
            sent.setdefault("Authorization", f"Bearer {bearer}")
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(
                response.status,
                {name.lower(): value for name, value in response.getheaders()},
                response.read(),
            )
        finally:
            connection.close()

    def ready(self) -> bool:
        """`/readyz` answers 200 (False while nothing listens yet)."""
        try:
            return self.get("/readyz", timeout=2).status == 200
        except OSError:
            return False

    def get(self, path: str, **options: object) -> Reply:
        return self.request("GET", path, **options)  # type: ignore[arg-type]

    def post(self, path: str, json_body: object = None, **options: object) -> Reply:
        return self.request("POST", path, json_body=json_body, **options)  # type: ignore[arg-type]

    def put(self, path: str, json_body: object = None, **options: object) -> Reply:
        return self.request("PUT", path, json_body=json_body, **options)  # type: ignore[arg-type]

    def delete(self, path: str, **options: object) -> Reply:
        return self.request("DELETE", path, **options)  # type: ignore[arg-type]


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick), for a server to bind next."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
