"""The Redis bus with real processes and a real `redis-server` (DESIGN §8, issue 12): a worker
killed with `kill -9` mid-task (another worker takes the task over and completes it), Redis
killed and started again under load (flowlord and the worker reconnect; every chain ends), and
flowlord killed mid-batch (after a restart every done is resolved once, nothing is lost)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from flowlord.state import SQLiteTaskStore, TaskFilter
from tests.conftest import write
from tests.processes import ROOT, flowlord_process, flowlord_run, stop, text, wait_until
from tests.redis_server import RedisServer
from workflow import Result, Task
from workflow.state import State

CHAIN = """
[[Phase]]
task = "start"                 # started by the test, as an outside worker would
rule = "cron=0 0 1 1 *"

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


def worker(
    home: Path, log: str, *args: str
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`flowlord worker ARGS` in `home` (reading its flowlord.toml), logging to `home/log`."""
    return flowlord_process(home, log, "worker", *args)


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
    home: Path, redis_server: RedisServer
) -> None:
    url = _url(home)
    chains = 300
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        with worker(home, "nop.log", "nop", "--topics", "work,after") as nop:
            start_chains(url, range(chains // 2))
            wait_until(lambda: completed(home, "after") > 0, "the first chains to end", run, nop)
            redis_server.kill()  # kill -9, mid-flow
            redis_server.start()  # same port, same append-only file
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


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--workflows", "wf"],
        ["worker", "exec", "--topic", "work", "--", "true"],
        ["worker", "nop", "--topics", "work"],
    ],
    ids=["run", "exec", "nop"],
)
def test_a_redis_that_does_not_answer_at_start_is_exit_2_naming_the_setting(
    tmp_path: Path, command: list[str]
) -> None:
    write(tmp_path / "wf", "chain.toml", CHAIN)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLOWLORD_BUS": "redis",
           "FLOWLORD_REDIS_URL": url, "FLOWLORD_PORT": "0"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "flowlord", *command], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("flowlord: ")]
    assert errors == [
        "flowlord: config 'redis_url' from FLOWLORD_REDIS_URL has value (hidden): cannot reach "
        f"Redis at redis://:***@127.0.0.1:{port}/0: Connection refused"
    ]
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "flowlord.db").exists()  # refused before anything was opened


NOT_TASKS: list[dict[str, str | bytes]] = [
    {"other": "field"},
    {"body": b"\xff\xfe not UTF-8"},
    {"body": "not json"},
    {"body": "[1, 2]"},
]


def test_messages_that_are_not_tasks_are_reported_and_everything_goes_on(home: Path) -> None:
    url = _url(home)
    client = redis.Redis.from_url(url)
    bad_task = '{"id":"odd-1","type":"work","meta":"workflow=chain.toml","created":"yesterday"}'
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        with worker(home, "exec.log", "exec", "--topic", "work", "--", "true") as exec_worker:
            for fields in [*NOT_TASKS, {"body": bad_task}]:
                client.xadd("flowlord:work", fields)
                client.xadd("flowlord:done", fields)
            start_chains(url, [1])
            wait_until(lambda: completed(home, "work") == 1, "the chain to go on", run, exec_worker)
            wait_until(lambda: _pending(client, "taskmaster") == 0, "every done acked", run)
            wait_until(lambda: not client.xpending("flowlord:work", "workers")["pending"],
                       "every task acked", exec_worker)  # fmt: skip
            assert stop(exec_worker) == 0
        assert stop(run) == 0
    client.close()
    worker_log, run_log = text(home, "exec.log"), text(home, "run.log")
    assert worker_log.count("bad task on work") == len(NOT_TASKS) + 1
    assert run_log.count("bad message on done") == len(NOT_TASKS) + 1
    assert ("odd-1", State.FAILED) in records(home, "work")  # answered `error`: flowlord has it
    assert "Traceback" not in worker_log + run_log
    assert "Traceback" not in worker_log + run_log


def test_workers_on_two_processes_share_a_topic_and_run_each_task_once(home: Path) -> None:
    """Two `worker exec` processes of one group: every task runs once, and both take some."""
    url = _url(home)
    chains = 40
    command = ["sh", "-c", 'echo "$0 $PPID" >> ran', "{meta:workflow}"]
    with flowlord_run(home, "run.log") as run:
        wait_until(lambda: leading(home), "the leader", run)
        with (
            worker(home, "w1.log", "exec", "--topic", "work", "--concurrency", "2", "--",
                   *command) as first,
            worker(home, "w2.log", "exec", "--topic", "work", "--concurrency", "2", "--",
                   *command) as second,
        ):  # fmt: skip
            for log in ("w1.log", "w2.log"):
                wait_until(lambda log=log: "reading work" in text(home, log), log, first, second)
            start_chains(url, range(chains))
            wait_until(lambda: completed(home, "work") == chains, "every task", run, first, second)
            assert stop(first) == stop(second) == 0
        assert stop(run) == 0
    runs = (home / "ran").read_text().splitlines()
    assert len(runs) == chains  # each task ran once
    assert {line.split()[0] for line in runs} == {"chain.toml"}  # {meta:workflow} was filled
    by_worker = {line.split()[1] for line in runs}
    assert by_worker == {str(first.pid), str(second.pid)}  # both took their share
