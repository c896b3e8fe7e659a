"""The Redis bus with real processes and a real `redis-server` (DESIGN §8, issue 12): a worker
killed with `kill -9` mid-task (another worker takes the task over and completes it), Redis
killed and started again under load (flowlord and the worker reconnect; every chain ends), and
flowlord killed mid-batch (after a restart every done is resolved once, nothing is lost)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from flowlord.state import SQLiteTaskStore, TaskFilter
from tests.conftest import write
from tests.processes import ROOT, flowlord_run, stop, text, wait_until
from workflow import Result, Task
from workflow.state import State

CHAIN = """
[[Phase]]
task = "start"                 # started by the test, as an outside worker would

[[Phase]]
task = "work"
dependsOn = "start"

[[Phase]]
task = "after"
dependsOn = "work"
"""
CLAIM = "1s"
"""Messages a dead consumer left are taken over after this: short, so the tests are quick."""

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path, redis_url: str) -> Path:
    write(tmp_path / "wf", "chain.toml", CHAIN)
    (tmp_path / "flowlord.toml").write_text(
        f'bus = "redis"\nredis_url = "{redis_url}"\nredis_claim_idle = "{CLAIM}"\nport = 0\n'
    )
    return tmp_path


@contextlib.contextmanager
def worker(home: Path, log: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`flowlord worker ARGS` in `home` (reading its flowlord.toml), logging to `home/log`."""
    with open(home / log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flowlord", "worker", *args], cwd=home,
            stdout=out, stderr=out, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def start_chains(url: str, ids: range | list[int]) -> None:
    """The done messages of `start`, one per chain, as a worker elsewhere would send them."""
    client = redis.Redis.from_url(url)
    with client.pipeline(transaction=False) as pipe:
        for n in ids:
            done = Task(type="start", id=f"chain-{n}", meta="workflow=chain.toml",
                        result=Result.COMPLETE)  # fmt: skip
            pipe.xadd("flowlord:done", {"body": done.to_json()})
        pipe.execute()
    client.close()


def records(home: Path, task_type: str) -> list[tuple[str, State]]:
    store = SQLiteTaskStore(home / "flowlord.db", now=lambda: datetime.now(UTC))
    try:
        found = store.tasks(TaskFilter(type=task_type, limit=100_000))
    finally:
        store.close()
    return sorted((record.id, record.state) for record in found)


def completed(home: Path, task_type: str) -> int:
    return sum(state is State.COMPLETE for _, state in records(home, task_type))


def leading(home: Path) -> bool:
    return "running as leader" in text(home, "run.log")


def test_a_worker_killed_mid_task_is_replaced_by_another_that_completes_it(home: Path) -> None:
    url = _url(home)
    command = ["sh", "-c", "echo $$ >> started; if [ -e hang ]; then sleep 60; fi"]
    (home / "hang").touch()
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        with worker(home, "a.log", "exec", "--topic", "work", "--", *command) as first:
            start_chains(url, [1])
            wait_until(lambda: (home / "started").exists(), "worker a to start the command", run)
            first.send_signal(signal.SIGKILL)
            first.wait()
        os.killpg(int((home / "started").read_text()), signal.SIGKILL)  # its orphaned command
        (home / "hang").unlink()
        assert records(home, "work") == [("chain-1", State.SENT)]
        with worker(home, "b.log", "exec", "--topic", "work", "--", *command) as second:
            wait_until(lambda: completed(home, "work") == 1, "worker b to complete it", run, second)
            assert stop(second) == 0
        assert stop(run) == 0
    assert len((home / "started").read_text().split()) == 2  # run by a, then again by b
    assert records(home, "after") == [("chain-1", State.SENT)]  # and the chain went on
    assert "Traceback" not in text(home, "b.log") + text(home, "run.log")


def test_redis_killed_and_started_again_under_load_loses_nothing(
    home: Path, redis_server: object
) -> None:
    url = _url(home)
    chains = 300
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        with worker(home, "nop.log", "nop", "--topics", "work,after") as nop:
            start_chains(url, range(chains // 2))
            wait_until(lambda: completed(home, "after") > 0, "the first chains to end", run, nop)
            redis_server.kill()  # type: ignore[attr-defined]  # kill -9, mid-flow
            redis_server.start()  # type: ignore[attr-defined]  # same port, same append-only file
            start_chains(url, range(chains // 2, chains))
            wait_until(lambda: completed(home, "after") == chains, "every chain to end", run, nop)
            assert stop(nop) == 0
        assert stop(run) == 0
    ids = [f"chain-{n}" for n in range(chains)]
    for task_type in ("start", "work", "after"):
        assert records(home, task_type) == sorted((i, State.COMPLETE) for i in ids)
    log = text(home, "run.log")
    assert "unavailable" in log or "reconnected" in log  # it noticed, and said so
    assert "Traceback" not in log + text(home, "nop.log")


def test_flowlord_killed_mid_batch_resolves_every_done_once_after_a_restart(home: Path) -> None:
    url = _url(home)
    chains = 2000
    client = redis.Redis.from_url(url)
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        start_chains(url, range(chains))
        wait_until(lambda: client.xlen("flowlord:work") > 0, "the first children", run)
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert client.xlen("flowlord:work") < chains, "flowlord finished before it was killed"
    with flowlord_run(home, "run2.log") as run:
        wait_until(lambda: len(records(home, "work")) == chains, "every child recorded", run)
        wait_until(lambda: _pending(client, "taskmaster") == 0, "every done acked", run)
        assert stop(run) == 0
    ids = sorted(f"chain-{n}" for n in range(chains))
    assert records(home, "start") == [(i, State.COMPLETE) for i in ids]
    assert records(home, "work") == [(i, State.SENT) for i in ids]  # one record each
    sent = {Task.from_json(fields[b"body"]).id for _, fields in client.xrange("flowlord:work")}
    assert sent == set(ids)  # every child went out (some twice: at least once)
    client.close()
    assert "Traceback" not in text(home, "run2.log")


def _url(home: Path) -> str:
    line = next(x for x in (home / "flowlord.toml").read_text().splitlines() if "redis_url" in x)
    return line.split('"')[1]


def _pending(client: redis.Redis, group: str) -> int:
    return int(client.xpending("flowlord:done", group)["pending"])
