"""`flowlord worker nop`: the demo handler on the worker runtime, the settings it shares with
`run`, and topics that follow the files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from flowlord.bus import Consumer, FileBus, MemoryBus
from flowlord.config import ConfigError, RunConfig
from flowlord.worker import FollowingConsumer, workflow_topics
from flowlord.worker.commands import run_nop_worker
from flowlord.worker.nop import NopHandler
from tests.conftest import write
from workflow import PhaseRecord, Result, Task

ROOT = Path(__file__).resolve().parent.parent


def test_following_consumer_resumes_each_topic_where_it_stopped() -> None:
    bus = MemoryBus()
    producer = bus.producer()
    for body in ("a1", "a2"):
        producer.send("a", body)
    producer.send("b", "b1")
    made: list[tuple[str, ...]] = []

    def make(topics: Sequence[str]) -> Consumer:
        made.append(tuple(topics))
        return bus.consumer(topics, group="w")

    consumer = FollowingConsumer(make, ["a"])
    first = consumer.receive(0)
    assert first is not None and first.body == "a1"
    consumer.ack(first)
    consumer.follow(["a", "b"])  # as the watch thread does when a workflow adds topic b
    bodies = []
    while (message := consumer.receive(0)) is not None:
        bodies.append(message.body)
        consumer.ack(message)
    assert sorted(bodies) == ["a2", "b1"]  # a1 is not delivered again
    assert made == [("a",), ("a", "b")]
    consumer.follow(["b"])
    assert consumer.receive(0) is None
    consumer.follow([])  # every workflow file removed: nothing to read, nothing fails
    assert consumer.receive(0.01) is None
    assert consumer.topics == ()
    consumer.close()
    assert made == [("a",), ("a", "b"), ("b",)]


def test_following_consumer_with_no_topic_yet() -> None:
    bus = MemoryBus()
    consumer = FollowingConsumer(lambda t: bus.consumer(t, group="w"), [])
    assert consumer.receive(0) is None
    bus.producer().send("late", "x")
    consumer.follow(["late"])
    message = consumer.receive(0)
    assert message is not None and message.body == "x"


def test_workflow_topics_skip_the_done_topic_and_names_the_bus_refuses() -> None:
    phases = [
        PhaseRecord(task="extract", file_path="a.toml"),
        PhaseRecord(task="load:x", file_path="a.toml"),
        PhaseRecord(task="done", file_path="b.toml"),
        PhaseRecord(task="bad topic", file_path="b.toml"),
        PhaseRecord(task=".hidden", file_path="b.toml"),
        PhaseRecord(task="extract:y", file_path="b.toml"),
    ]
    assert workflow_topics(phases, done_topic="done") == ["extract", "load"]


def test_nop_handler_fails_the_first_tasks_of_a_type() -> None:
    handler = NopHandler({"a": 2})
    ended = [handler(Task(type=kind)) for kind in ("a", "b", "a", "a")]
    assert [(o.result, o.msg) for o in ended] == [
        (Result.ERROR, "nop: told to fail"), (Result.COMPLETE, "nop"),
        (Result.ERROR, "nop: told to fail"), (Result.COMPLETE, "nop"),
    ]  # fmt: skip


def test_nop_worker_answers_on_the_file_bus(tmp_path: Path) -> None:
    bus = FileBus(tmp_path / "bus")
    producer = bus.producer()
    for n in range(2):
        producer.send("a", Task(type="a", id=f"t{n}").to_json())
    producer.close()
    config = RunConfig(bus_dir=str(tmp_path / "bus"), done_topic="finished")
    stop = threading.Event()
    worker = threading.Thread(
        target=run_nop_worker, args=(config, ["a"], stop), kwargs={"fail_first": {"a": 1}}
    )
    worker.start()
    done = bus.consumer(["finished"], group="test")
    answers = []
    deadline = time.monotonic() + 10
    while len(answers) < 2 and time.monotonic() < deadline:
        if (message := done.receive(0.1)) is not None:
            answers.append(Task.from_json(message.body))
    done.close()
    stop.set()
    worker.join(10)
    assert not worker.is_alive()
    assert [(t.id, t.result, t.msg) for t in answers] == [
        ("t0", Result.ERROR, "nop: told to fail"), ("t1", Result.COMPLETE, "nop")
    ]  # fmt: skip


def test_nop_worker_refuses_the_memory_bus() -> None:
    with pytest.raises(ConfigError, match="a worker needs the file or redis bus"):
        run_nop_worker(RunConfig(bus="memory"), ["a"], threading.Event(), fail_first={})


def start_worker(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    with open(tmp_path / "worker.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flowlord", "worker", "nop", *args],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log,
            env={**clean, **env, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip


def wait_for_log(process: subprocess.Popen[bytes], log: Path, text: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        if text in log.read_text():
            return
        time.sleep(0.05)  # polling another process's log, bounded by the deadline
    raise AssertionError(f"{text!r} not logged:\n{log.read_text()}")


@pytest.mark.slow
def test_worker_reads_shared_settings_and_follows_a_workflow_added_later(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    write(conf / "wf", "first.toml", '[[Phase]]\ntask = "a"\nrule = "cron=@daily"\n')
    (conf / "flowlord.toml").write_text('workflows = "wf"\nbus_dir = "queue"\n')
    env = {"FLOWLORD_DONE_TOPIC": "finished", "FLOWLORD_LOG_FORMAT": "json"}
    worker = start_worker(tmp_path, "--config", "conf/flowlord.toml", env=env)
    bus = FileBus(conf / "queue")  # from the file: relative to the file's folder
    done = bus.consumer(["finished"], group="test")
    producer = bus.producer()
    try:
        wait_for_log(worker, tmp_path / "worker.log", '"message": "nop worker reading a from')
        write(conf / "wf", "second.toml", '[[Phase]]\ntask = "b2"\nrule = "cron=@daily"\n')
        task = Task(type="b2", info="?day=2026-11-21", id="run-1", created="2026-11-21T00:00:00Z")
        producer.send("b2", task.to_json())
        deadline = time.monotonic() + 20
        answer = None
        while answer is None and time.monotonic() < deadline and worker.poll() is None:
            answer = done.receive(0.5)
        assert answer is not None, (tmp_path / "worker.log").read_text()
        completed = Task.from_json(answer.body)
        assert (completed.type, completed.id, completed.result) == ("b2", "run-1", "complete")
        assert worker.poll() is None  # the same process: no restart
        assert '"message": "now reading a, b2"' in (tmp_path / "worker.log").read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0
        for line in (tmp_path / "worker.log").read_text().splitlines():  # FLOWLORD_LOG_FORMAT
            assert {"at", "level", "logger", "message"} <= json.loads(line).keys()
    finally:
        done.close()
        producer.close()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
