"""The worker runtime in-process, on the memory bus and the file bus, with plain Python handlers:
results, send before ack, concurrency, stopping within and past the grace, bodies that are not
tasks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flowlord.bus import BusUnavailable, Consumer, FileBus, MemoryBus, Message, Producer
from flowlord.config import RunConfig
from flowlord.worker import Outcome, Result, Task, serve
from flowlord.worker.runtime import Report, Runtime
from tests.conftest import FIXED_NOW, fixed_now
from workflow.task import rfc3339

STAMP = rfc3339(FIXED_NOW)
DEADLINE = 10.0
Bus = FileBus | MemoryBus


@pytest.fixture(params=["memory", "file"])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Bus:
    return MemoryBus() if request.param == "memory" else FileBus(tmp_path / "bus")


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.005)  # polling a condition another thread sets, bounded by the deadline


class Events:
    """What the wrappers saw, in order, from every thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    def add(self, kind: str, what: str, change: int = 0) -> None:
        with self.lock:
            self.seen.append((kind, what))
            self.in_flight += change
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def kinds(self, what: str) -> list[str]:
        with self.lock:
            return [kind for kind, about in self.seen if about == what]


class Watched:
    """A real consumer; what it delivers and acks is noted (by task id, or the body)."""

    def __init__(self, inner: Consumer, events: Events) -> None:
        self.inner = inner
        self.events = events

    def receive(self, timeout: float) -> Message | None:
        message = self.inner.receive(timeout)
        if message is not None:
            self.events.add("receive", ident(message.body), +1)
        return message

    def ack(self, message: Message) -> None:
        self.inner.ack(message)
        self.events.add("ack", ident(message.body), -1)

    def wakeup(self) -> None:
        self.inner.wakeup()

    def close(self) -> None:
        self.inner.close()


class Flaky:
    """A real producer whose first `failures` sends raise BusUnavailable (a Redis outage)."""

    def __init__(self, inner: Producer, events: Events, failures: int = 0) -> None:
        self.inner = inner
        self.events = events
        self.failures = failures

    def send(self, topic: str, body: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.events.add("send failed", ident(body))
            raise BusUnavailable("connection refused")
        self.inner.send(topic, body)
        self.events.add("sent", ident(body))

    def close(self) -> None:
        self.inner.close()


def ident(body: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("id", body))
    return body


@dataclass
class Worker:
    """A runtime running on a thread of the test."""

    runtime: Runtime
    events: Events
    stop: threading.Event = field(default_factory=threading.Event)
    stop_now: threading.Event = field(default_factory=threading.Event)
    report: Report | None = None
    thread: threading.Thread | None = None

    def start(self) -> None:
        def run() -> None:
            self.report = self.runtime.run(self.stop, self.stop_now)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> Report:
        assert self.thread is not None
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "the runtime did not stop"
        assert self.report is not None
        return self.report


@contextlib.contextmanager
def worker(
    bus: Bus,
    handler: Callable[[Task], Outcome | str | None],
    *,
    failures: int = 0,
    concurrency: int = 1,
    grace: float = 30.0,
    cancel: Callable[[], None] | None = None,
) -> Iterator[Worker]:
    events = Events()
    consumer = Watched(bus.consumer(["work"], "workers"), events)
    producer = Flaky(bus.producer(), events, failures)
    runtime = Runtime(consumer, producer, handler, now=fixed_now, poll=0.05,
                      concurrency=concurrency, grace=grace, cancel=cancel)  # fmt: skip
    running = Worker(runtime, events)
    running.start()
    try:
        yield running
    finally:
        running.stop.set()
        running.stop_now.set()
        running.join()
        producer.close()


def send(bus: Bus, *tasks: Task | str) -> None:
    producer = bus.producer()
    for task in tasks:
        producer.send("work", task if isinstance(task, str) else task.to_json())
    producer.close()


def answers(bus: Bus, count: int) -> list[Task]:
    """The next `count` done messages (group `test`), waiting for them."""
    consumer = bus.consumer(["done"], "test")
    found: list[Task] = []
    deadline = time.monotonic() + DEADLINE
    while len(found) < count and time.monotonic() < deadline:
        message = consumer.receive(0.1)
        if message is not None:
            found.append(Task.from_json(message.body))
            consumer.ack(message)
    consumer.close()
    assert len(found) == count, found
    return found


def redelivered(bus: Bus) -> list[str]:
    """What a new consumer of the workers' group gets: the tasks never acked."""
    consumer = bus.consumer(["work"], "workers")
    ids = []
    while (message := consumer.receive(0)) is not None:
        ids.append(ident(message.body))
    consumer.close()
    return ids


def task(n: int, info: str = "") -> Task:
    return Task(type="work", job="j", info=info, meta=f"workflow=w.toml&n={n}", id=f"t{n}",
                created="2026-11-21T11:00:00Z")  # fmt: skip


def handle(task: Task) -> Outcome | str | None:
    """Does what the task's info says."""
    kind, _, text = task.info.partition(":")
    if kind == "raise":
        raise ValueError(text)
    if kind == "exit":
        raise SystemExit(3)
    if kind == "str":
        return text
    if kind == "object":
        return 42  # type: ignore[return-value]
    return Outcome(Result(kind), text) if kind else None


def test_results_of_a_handler(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    infos = ["", "str:3 rows", "complete:", "warn:empty", "alert:late", "error:no data",
             "raise:boom", "raise:" + "x" * 5000, "exit:", "object:"]  # fmt: skip
    send(bus, *(task(n, info) for n, info in enumerate(infos)))
    with worker(bus, handle) as running:
        done = {t.id: t for t in answers(bus, len(infos))}
        running.stop.set()
        report = running.join()
    assert [(done[f"t{n}"].result, done[f"t{n}"].msg) for n in range(len(infos))] == [
        (Result.COMPLETE, ""), (Result.COMPLETE, "3 rows"), (Result.COMPLETE, ""),
        (Result.WARN, "empty"), (Result.ALERT, "late"), (Result.ERROR, "no data"),
        (Result.ERROR, "ValueError: boom"), (Result.ERROR, "ValueError: " + "x" * 1987 + "…"),
        (Result.ERROR, "SystemExit: 3"),
        (Result.ERROR, "handler returned int, not Outcome, str or None"),
    ]  # fmt: skip
    for n, info in enumerate(infos):  # the task as received, with its answer
        answer = done[f"t{n}"]
        assert (answer.started, answer.ended) == (STAMP, STAMP)
        expected = task(n, info)
        assert (answer.type, answer.job, answer.info, answer.meta, answer.created) == (
            expected.type, expected.job, expected.info, expected.meta, expected.created
        )  # fmt: skip
    assert report == Report(handled=len(infos), rejected=0, unfinished=0)
    assert redelivered(bus) == []  # all acked
    failed = [r for r in caplog.records if r.levelno == logging.ERROR and "t6" in r.getMessage()]
    assert failed and failed[0].exc_info is not None  # the traceback, with the task's id


def test_done_is_sent_before_the_ack_and_retried_until_it_goes(bus: Bus) -> None:
    send(bus, task(1))
    with worker(bus, handle, failures=2) as running:
        [done] = answers(bus, 1)
        wait_for(lambda: "ack" in running.events.kinds("t1"), "the ack")
        running.stop.set()
        assert running.join().handled == 1
    assert done.id == "t1" and done.result == Result.COMPLETE
    assert running.events.kinds("t1") == [
        "receive", "send failed", "send failed", "sent", "ack"
    ]  # fmt: skip


def test_a_done_never_sent_is_never_acked(bus: Bus) -> None:
    send(bus, task(1))
    with worker(bus, handle, failures=1000, grace=0.2) as running:
        wait_for(lambda: running.events.kinds("t1").count("send failed") >= 2, "retries")
        running.stop.set()
        report = running.join()
    assert "ack" not in running.events.kinds("t1")
    assert report.unfinished == 1 and report.handled == 0
    assert redelivered(bus) == ["t1"]


def test_concurrency_runs_n_handlers_at_once_and_takes_no_more(bus: Bus) -> None:
    barrier = threading.Barrier(3, timeout=DEADLINE)

    def together(task: Task) -> str:
        return f"waited with {barrier.wait()}"  # passes only when three run at once

    send(bus, *(task(n) for n in range(7)))
    with worker(bus, together, concurrency=3, grace=0.1, cancel=barrier.abort) as running:
        found = answers(bus, 6)
        running.stop.set()
        report = running.join()
    assert {t.result for t in found} == {Result.COMPLETE}
    assert running.events.most_in_flight == 3  # received and not acked
    assert report.unfinished == 1  # the seventh waits for two more: cancelled at the grace


def test_graceful_stop_lets_running_handlers_finish_and_acks_them(bus: Bus) -> None:
    started, release = threading.Semaphore(0), threading.Event()

    def slow(task: Task) -> str:
        started.release()
        release.wait(DEADLINE)
        return "finished after the stop"

    send(bus, task(1), task(2), task(3))
    with worker(bus, slow, concurrency=2, grace=DEADLINE) as running:
        for _ in range(2):
            assert started.acquire(timeout=DEADLINE)
        running.stop.set()
        release.set()
        report = running.join()
    assert report == Report(handled=2, rejected=0, unfinished=0)
    assert {t.id for t in answers(bus, 2)} == {"t1", "t2"}
    assert running.events.kinds("t3") == []  # never received: the next worker's
    assert redelivered(bus) == ["t3"]


def test_past_the_grace_cancel_is_called_and_the_task_goes_to_the_next_consumer(bus: Bus) -> None:
    started, cancelled = threading.Event(), threading.Event()

    def stuck(task: Task) -> str:
        started.set()
        cancelled.wait(DEADLINE)
        return "too late"

    send(bus, task(1))
    with worker(bus, stuck, grace=0.1, cancel=cancelled.set) as running:
        assert started.wait(DEADLINE)
        running.stop.set()
        report = running.join()
    assert cancelled.is_set()
    assert report == Report(handled=0, rejected=0, unfinished=1)
    assert running.events.kinds("t1") == ["receive"]  # no send, no ack
    assert redelivered(bus) == ["t1"]


def test_a_second_stop_request_ends_the_grace_at_once(bus: Bus) -> None:
    started, cancelled = threading.Event(), threading.Event()

    def stuck(task: Task) -> None:
        started.set()
        cancelled.wait(DEADLINE)

    send(bus, task(1))
    with worker(bus, stuck, grace=3600.0, cancel=cancelled.set) as running:
        assert started.wait(DEADLINE)
        running.stop.set()
        running.stop_now.set()
        report = running.join()
    assert cancelled.is_set() and report.unfinished == 1
    assert redelivered(bus) == ["t1"]


def test_bodies_that_are_not_tasks(bus: Bus, caplog: pytest.LogCaptureFixture) -> None:
    bad = [
        "not json",
        "[1, 2]",
        '{"type": "work", "id": 7}',  # an id, but not a string: nothing to answer
        '{"id": "b0", "type": "", "created": "x"}',  # an empty type
        '{"id": "b1", "type": "work", "created": "yesterday", "info": "i"}',
        '{"id": "b2", "type": "work", "job": 5, "meta": "retry=1", '
        '"created": "2026-11-21T11:00:00Z"}',
        '{"id": "b3", "type": "work", "result": "maybe"}',
    ]
    send(bus, *bad, task(1))
    with worker(bus, handle) as running:
        found = answers(bus, 4)
        running.stop.set()
        report = running.join()
    assert [(t.id, t.result) for t in found] == [
        ("b1", Result.ERROR), ("b2", Result.ERROR), ("b3", Result.ERROR), ("t1", Result.COMPLETE)
    ]  # fmt: skip
    b1, b2, b3 = found[:3]
    assert b1.msg == "bad task: task field 'created' is not an RFC 3339 time: 'yesterday'"
    assert (b1.type, b1.info, b1.created, b1.started, b1.ended) == ("work", "i", "", STAMP, STAMP)
    assert b2.msg == "bad task: task field 'job' must be a string, got number"
    assert (b2.job, b2.meta, b2.created) == ("", "retry=1", "2026-11-21T11:00:00Z")
    assert b3.msg.startswith("bad task: task field 'result' is 'maybe'")
    assert report == Report(handled=1, rejected=len(bad), unfinished=0)
    assert redelivered(bus) == []  # every one acked
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith("bad task on work at 0: invalid task JSON") for m in logged), logged
    assert len([m for m in logged if m.startswith("bad task on work at ")]) == len(bad)


def serving(**kwargs: object) -> tuple[threading.Thread, threading.Event, list[int]]:
    """`serve` on a thread of the test, stopped by the event it returns."""
    stop = threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(serve(["work"], handle, stop=stop, **kwargs))  # type: ignore[arg-type]
    )
    thread.start()
    return thread, stop, codes


def test_serve_with_a_bus(bus: Bus) -> None:
    send(bus, task(1, "str:served"))
    thread, stop, codes = serving(bus=bus, concurrency=2, group="workers")
    [done] = answers(bus, 1)
    stop.set()
    thread.join(DEADLINE)
    assert (done.id, done.result, done.msg) == ("t1", Result.COMPLETE, "served")
    assert codes == [0] and redelivered(bus) == []


def test_serve_reads_the_settings_as_run_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [name for name in os.environ if name.startswith("FLOWLORD_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flowlord.toml").write_text('bus_dir = "queue"\ndone_topic = "finished"\n')
    monkeypatch.setenv("FLOWLORD_DONE_TOPIC", "answers")  # the environment before the file
    bus = FileBus(tmp_path / "queue")
    send(bus, task(1))
    thread, stop, codes = serving()
    consumer = bus.consumer(["answers"], "test")
    message = None
    deadline = time.monotonic() + DEADLINE
    while message is None and time.monotonic() < deadline:
        message = consumer.receive(0.1)
    consumer.close()
    stop.set()
    thread.join(DEADLINE)
    assert message is not None and Task.from_json(message.body).id == "t1"
    assert codes == [0]


@pytest.mark.parametrize(
    ("topics", "settings", "expected"),
    [
        ("work", {}, "a worker needs a list of topics"),
        (["done"], {}, "topic 'done' is the done topic"),
        (["a b"], {}, "invalid topic 'a b'"),
        (["work"], {"group": "a.b"}, "invalid group 'a.b'"),
        (["work"], {"concurrency": 0}, "concurrency must be a whole number from 1"),
        (["work"], {"grace": -1.0}, "grace must be 0 or more seconds"),
        (["work"], {"config": RunConfig(bus="memory")}, "config 'bus' from the default"),
    ],
)
def test_serve_refuses(
    topics: object, settings: dict[str, object], expected: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # where a bus folder would be made, were the input fine
    settings.setdefault("config", RunConfig())
    with pytest.raises(ValueError, match=re.escape(expected)):
        serve(topics, handle, stop=threading.Event(), **settings)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_on_redis_an_unfinished_task_goes_to_the_next_worker_at_once(redis_url: str) -> None:
    from flowlord.bus.streams import RedisBus

    bus = RedisBus(redis_url, claim_idle=3600.0)  # not by reclaiming: released on close
    try:
        started, cancelled = threading.Event(), threading.Event()

        def stuck(task: Task) -> None:
            started.set()
            cancelled.wait(DEADLINE)

        events = Events()
        producer = bus.producer()
        producer.send("work", task(1).to_json())
        runtime = Runtime(Watched(bus.consumer(["work"], "workers"), events), producer, stuck,
                          now=fixed_now, grace=0.1, cancel=cancelled.set, poll=0.05)  # fmt: skip
        running = Worker(runtime, events)
        running.start()
        assert started.wait(DEADLINE)
        running.stop.set()
        assert running.join().unfinished == 1
        next_worker = bus.consumer(["work"], "workers")
        message = next_worker.receive(2.0)
        assert message is not None and ident(message.body) == "t1"
        next_worker.close()
        producer.close()
    finally:
        bus.close()
