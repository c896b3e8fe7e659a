"""`flowlord watch`: the change report, and the real command following real saves."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from flowlord.watch import describe_change
from tests.conftest import write
from workflow import PhaseRecord

ROOT = Path(__file__).resolve().parent.parent


def record(task: str, **fields: object) -> PhaseRecord:
    return PhaseRecord(task=task, file_path="f.toml", **fields)


def test_describe_added_removed_changed_and_findings() -> None:
    before = {"a": record("a", rule="cron=@daily"), "gone": record("gone", depends_on="a")}
    after = {
        "a": record("a", rule="cron=@hourly"),
        "new": record("new", depends_on="x", status="parent task not found: x"),
    }
    assert describe_change("f.toml", before, after, removed=False) == [
        "f.toml: loaded, 2 phase(s): +1 added, -1 removed, ~1 changed",
        "  + new (dependsOn x)",
        "  - gone",
        "  ~ a: rule 'cron=@daily' -> 'cron=@hourly'",
        "  ! new: parent task not found: x",
    ]


def test_describe_removed_file() -> None:
    before = {"a": record("a"), "b": record("b")}
    assert describe_change("f.toml", before, {}, removed=True) == [
        "f.toml: removed (2 phase(s) dropped)"
    ]


class Lines:
    """Reads a process's output in a thread, so a test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(
            target=lambda: [self._lines.put(line) for line in stdout], daemon=True
        ).start()

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed; got {self.seen}")


def test_watch_command_follows_saves(tmp_path: Path) -> None:
    folder = tmp_path / "wf"
    write(folder, "a.toml", '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n')
    new = '[[Phase]]\ntask = "a"\nrule = "cron=@hourly"\n[[Phase]]\ntask = "b"\ndependsOn = "zz"\n'
    command = [sys.executable, "-m", "flowlord", "watch", str(folder), "--debounce-ms", "20"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as process:  # fmt: skip
        try:
            lines = Lines(process)
            lines.wait_for("1 file(s), 1 phase(s)")
            write(folder, "a.toml", new)
            lines.wait_for("a.toml: loaded, 2 phase(s): +1 added, -0 removed, ~1 changed")
            lines.wait_for("! b: parent task not found: zz")
            write(folder, "a.toml", "[[Phase")
            lines.wait_for("error: a.toml: line 1: TOML syntax")
            assert "(last good phases kept)" in lines.seen[-1]
            (folder / "a.toml").unlink()
            lines.wait_for("a.toml: removed (2 phase(s) dropped)")
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()
