"""`flowlord run` and `flowlord worker nop` as real processes on the file bus (slow: seconds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write
from workflow import Task

ROOT = Path(__file__).resolve().parent.parent
EVERY_SECOND = """
[[Phase]]
task = "extract"
rule = "cron=* * * * * *"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"

[[Phase]]
task = "transform"
dependsOn = "extract"
rule = "retry_delay=0s"
retry = 1
template = "?hour={yyyy}-{mm}-{dd}T{hh}"

[[Phase]]
task = "load"
dependsOn = "transform"
template = "?hour={yyyy}-{mm}-{dd}T{hh}"
"""


def start(tmp_path: Path, log: str, *args: str) -> subprocess.Popen[bytes]:
    """A flowlord process whose log goes to a file (a pipe could fill up and block it)."""
    with open(tmp_path / log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flowlord", *args],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=out,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip


def done_tasks(bus: Path) -> list[Task]:
    path = bus / "done.jsonl"
    return [Task.from_json(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_run_and_nop_worker_move_tasks_through_a_workflow(tmp_path: Path) -> None:
    write(tmp_path / "wf", "etl.toml", EVERY_SECOND)
    write(tmp_path / "wf", "broken.toml", "[[Phase")  # a broken file never stops start-up
    worker = start(tmp_path, "worker.log", "worker", "nop", "--workflows", "wf",
                   "--fail-first", "transform=1")  # fmt: skip
    run = start(tmp_path, "run.log", "run", "--workflows", "wf")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(t.type == "load" for t in done_tasks(tmp_path / "bus")):
                break
            time.sleep(0.1)  # polling another process's output file; bounded by the deadline
        run.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGINT)
        assert run.wait(timeout=10) == 0
        assert worker.wait(timeout=10) == 0
    finally:
        for process in (run, worker):
            if process.poll() is None:
                process.kill()
            process.wait()
    log = (tmp_path / "run.log").read_text()
    done = done_tasks(tmp_path / "bus")
    assert any(t.type == "load" and t.result == "complete" for t in done), log
    failed_first = [t for t in done if t.type == "transform" and t.result == "error"]
    assert len(failed_first) == 1  # then retried
    assert "broken.toml: line 1: TOML syntax" in log
    assert "fired etl.toml: extract at " in log
    for path in (tmp_path / "bus").glob("*.jsonl"):  # every line whole after the shutdown
        for line in path.read_text().splitlines():
            Task.from_json(line)
    assert (tmp_path / "bus" / ".offsets").is_dir()
