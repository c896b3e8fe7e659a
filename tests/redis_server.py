"""A real `redis-server` for the test session (`redis_server`) and a clean database per test
(`redis_url`). Without redis-server the tests that ask are skipped, or fail when
FLOWLORD_REQUIRE_REDIS=1 (CI)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

MISSING = "redis-server is not installed: apt-get install redis-server"
START_WAIT = 10.0
PORT_TRIES = 5


class PortTaken(Exception):
    """redis-server exited at once: another process took the port after we picked it."""


@dataclass
class RedisServer:
    """One redis-server on 127.0.0.1:`port`, its data and log in `folder`. Every write is
    fsynced to the append-only file before it is answered, so `kill` (SIGKILL) loses nothing
    a client saw acknowledged."""

    binary: str
    folder: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it on its port (a free one the first time) and wait until PING answers."""
        for _ in range(PORT_TRIES if not self.port else 1):
            port = self.port or free_port()
            try:
                self._launch(port)
            except PortTaken:
                continue
            self.port = port
            return
        raise RuntimeError(f"redis-server would not start: see {self.folder / 'redis.log'}")

    def _launch(self, port: int) -> None:
        command = [
            self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--daemonize", "no", "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.process = process
        deadline = time.monotonic() + START_WAIT
        while not answers_ping(port):
            if process.poll() is not None:
                raise PortTaken(port)
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {port} did not answer PING")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_ping(port: int) -> bool:
    """True once the server answers +PONG (not -LOADING while it reads its append-only file)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        time.sleep(0.01)  # refused at once: don't spin while the server starts
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("FLOWLORD_REQUIRE_REDIS") == "1":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The server's URL, with an empty database; running again if a test killed it."""
    if not redis_server.running():
        redis_server.start()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url
