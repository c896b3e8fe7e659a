"""Real `flowlord run` processes for tests: started in a folder, logging to a file, always
reaped; and a bounded wait on what they write."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from flowlord.bus import FileBus

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30.0


@contextlib.contextmanager
def flowlord_process(
    home: Path, log: str, *argv: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`flowlord ARGV` in `home`, its log in `home/log` (a pipe could fill and block it);
    killed on the way out if it is still up. `env`: the environment (default: this one's,
    with the checkout on PYTHONPATH)."""
    with open(home / log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowlord", *argv], cwd=home, stdout=subprocess.DEVNULL,
            stderr=out, env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def flowlord_run(
    home: Path, log: str, *flags: str
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`flowlord run --workflows wf FLAGS` as `flowlord_process` runs it."""
    return flowlord_process(home, log, "run", "--workflows", "wf", *flags)


def wait_until(check: Callable[[], bool], what: str, *alive: subprocess.Popen[bytes]) -> None:
    """Poll another process's output until `check` holds; fail if one dies or time runs out."""
    deadline = time.monotonic() + DEADLINE
    while not check():
        for process in alive:
            assert process.poll() is None, f"flowlord run died while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)  # bounded polling of another process's files


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, and the exit code (it must come within 10 s)."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=10)


def text(home: Path, log: str) -> str:
    path = home / log
    return path.read_text() if path.exists() else ""


def tasks_on(bus: Path, topic: str) -> list[dict[str, str]]:
    """Every task a topic of the file bus in `bus` holds (its active segment)."""
    path = FileBus(bus).topic_path(topic)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
