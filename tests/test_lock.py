"""One `flowlord run` per database: the lock in-process, and real processes (one killed -9)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowlord.lock import DatabaseInUse, holding, lock_path
from tests.conftest import fixed_now, write

ROOT = Path(__file__).resolve().parent.parent


def test_a_second_holder_is_refused_with_the_first_ones_details(tmp_path: Path) -> None:
    db = str(tmp_path / "flowlord.db")
    with holding(db, now=fixed_now) as path:
        assert path == str(tmp_path / "flowlord.db.lock")
        holder = json.loads(Path(path).read_text())
        assert holder == {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": "2026-11-21T12:00:00Z",
            "db": db,
        }
        with pytest.raises(DatabaseInUse) as caught, holding(db, now=fixed_now):
            pass  # flock conflicts between two opens, even in one process
    message = str(caught.value)
    assert f"database {db!r} is in use by another flowlord run" in message
    assert (
        f"pid {os.getpid()} on host {socket.gethostname()}, started 2026-11-21T12:00:00Z" in message
    )
    with holding(db, now=fixed_now):  # released on leaving the block
        pass
    assert Path(lock_path(db)).read_text() == ""  # no stale holder details left behind


def test_the_lock_follows_symlinks_to_the_real_database(tmp_path: Path) -> None:
    (tmp_path / "real.db").write_bytes(b"")
    (tmp_path / "alias.db").symlink_to(tmp_path / "real.db")
    assert lock_path(str(tmp_path / "alias.db")) == str(tmp_path / "real.db.lock")
    with (
        holding(str(tmp_path / "real.db"), now=fixed_now),
        pytest.raises(DatabaseInUse),
        holding(str(tmp_path / "alias.db"), now=fixed_now),
    ):
        pass


def test_unknown_holder_details(tmp_path: Path) -> None:
    db = str(tmp_path / "x.db")
    with holding(db, now=fixed_now) as path:
        Path(path).write_text("not json")
        with pytest.raises(DatabaseInUse, match="holder unknown"), holding(db, now=fixed_now):
            pass


def test_memory_database_has_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with holding(":memory:", now=fixed_now), holding(":memory:", now=fixed_now):
        pass
    assert list(tmp_path.iterdir()) == []


def start_run(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    with open(tmp_path / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flowlord", "run", "--workflows", "wf", "--bus", "memory"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip


def wait_for_line(process: subprocess.Popen[bytes], log: Path, text: str) -> None:
    """Poll another process's log file until `text` shows, with a deadline."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged; log:\n{log.read_text()}")


@pytest.mark.slow
def test_second_run_refused_until_the_first_is_killed(tmp_path: Path) -> None:
    write(tmp_path / "wf", "a.toml", '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n')
    first = start_run(tmp_path, "a")
    third = None
    try:
        wait_for_line(first, tmp_path / "a.log", "flowlord running")
        second = subprocess.run(
            [sys.executable, "-m", "flowlord", "run", "--workflows", "wf", "--bus", "memory"],
            cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert second.returncode == 2, second.stderr
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("flowlord: ")
        assert f"database {str(tmp_path / 'flowlord.db')!r} is in use" in second.stderr
        assert f"pid {first.pid} on host {socket.gethostname()}" in second.stderr

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        third = start_run(tmp_path, "c")
        wait_for_line(third, tmp_path / "c.log", "flowlord running")
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=10) == 0
    finally:
        for process in (first, third):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
