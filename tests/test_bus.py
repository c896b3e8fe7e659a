"""The bus contract against MemoryBus, FileBus and RedisBus, then what only the file bus
promises. (What only Redis promises, with a real server: tests/test_redis_bus.py.)"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlord.bus import Consumer, FileBus, MemoryBus, Message, Producer, check_topic
from flowlord.bus.offsets import read_offset
from flowlord.bus.streams import RedisBus

Bus = MemoryBus | FileBus | RedisBus
WAIT = 2.0
EMPTY = 0.05


def make_bus(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Bus:
    if kind == "memory":
        return MemoryBus()
    if kind == "file":
        return FileBus(tmp_path / "bus", poll_interval=0.01)
    # claim_idle 0: a new consumer of the group takes every unacked message at once, as a
    # new consumer of the other adapters resumes after the acked ones.
    return RedisBus(request.getfixturevalue("redis_url"), claim_idle=0.0)


@pytest.fixture(params=["memory", "file", "redis"])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    """Each contract test runs once per adapter (redis needs a redis-server)."""
    made = make_bus(request.param, request, tmp_path)
    yield made
    if isinstance(made, RedisBus):
        made.close()  # and every consumer made on it: no heartbeat thread outlives the test


@pytest.fixture(params=["memory", "file"])
def prefix_bus(request: pytest.FixtureRequest, tmp_path: Path) -> Bus:
    """The adapters that commit a group's position as the acked prefix of a topic. Redis
    acks each message by itself: see test_redis_bus.py."""
    return make_bus(request.param, request, tmp_path)


@pytest.fixture
def producer(bus: Bus) -> Iterator[Producer]:
    made = bus.producer()
    yield made
    made.close()


@pytest.fixture
def prefix_producer(prefix_bus: Bus) -> Iterator[Producer]:
    made = prefix_bus.producer()
    yield made
    made.close()


@pytest.fixture
def file_bus(tmp_path: Path) -> FileBus:
    return FileBus(tmp_path / "bus", poll_interval=0.01)


@pytest.fixture
def file_producer(file_bus: FileBus) -> Iterator[Producer]:
    made = file_bus.producer()
    yield made
    made.close()


def drain(consumer: Consumer) -> list[Message]:
    """Every message available now; ends with one empty `receive` of EMPTY seconds."""
    messages = []
    while (message := consumer.receive(EMPTY)) is not None:
        messages.append(message)
    return messages


def bodies(messages: list[Message]) -> list[str]:
    return [message.body for message in messages]


def send_all(producer: Producer, topic: str, *items: str) -> None:
    for body in items:
        producer.send(topic, body)


# The contract: MemoryBus, FileBus and RedisBus alike.


def test_a_topic_delivers_in_send_order(bus: Bus, producer: Producer) -> None:
    send_all(producer, "extract", *[json.dumps({"n": n}) for n in range(5)])
    got = drain(bus.consumer(["extract"], "g"))
    assert [json.loads(m.body)["n"] for m in got] == [0, 1, 2, 3, 4]
    assert {m.topic for m in got} == {"extract"}
    assert [m.offset for m in got] == sorted({m.offset for m in got})


def test_receive_waits_for_the_timeout_then_returns_none(bus: Bus) -> None:
    consumer = bus.consumer(["extract"], "g")
    start = time.monotonic()
    assert consumer.receive(EMPTY) is None
    assert EMPTY <= time.monotonic() - start < 1.0


def test_all_topics_are_delivered_in_turn(bus: Bus, producer: Producer) -> None:
    send_all(producer, "extract", "e1", "e2", "e3")
    send_all(producer, "done", "d1", "d2")
    got = drain(bus.consumer(["extract", "done", "retry-failed"], "g"))
    assert bodies(got) == ["e1", "d1", "e2", "d2", "e3"]
    assert [m.topic for m in got] == ["extract", "done"] * 2 + ["extract"]


def test_a_new_consumer_of_the_group_resumes_after_the_last_ack(
    bus: Bus, producer: Producer
) -> None:
    send_all(producer, "extract", "a", "b", "c", "d")
    first = bus.consumer(["extract"], "g")
    for _ in range(2):
        message = first.receive(WAIT)
        assert message is not None
        first.ack(message)
    first.close()
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["c", "d"]


def test_unacked_messages_are_delivered_again(bus: Bus, producer: Producer) -> None:
    send_all(producer, "extract", "a", "b", "c")
    first = bus.consumer(["extract"], "g")
    received = drain(first)
    first.ack(received[0])
    first.close()
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["b", "c"]


def test_ack_all_acks_a_batch_across_topics_as_acking_each(bus: Bus, producer: Producer) -> None:
    send_all(producer, "extract", "e1", "e2", "e3")
    send_all(producer, "done", "d1", "d2")
    first = bus.consumer(["extract", "done"], "g")
    batch = drain(first)
    first.ack_all([m for m in batch if m.body != "e3"])
    first.ack_all([])
    first.close()
    assert bodies(drain(bus.consumer(["extract", "done"], "g"))) == ["e3"]


def test_out_of_order_acks_commit_only_the_acked_prefix(
    prefix_bus: Bus, prefix_producer: Producer
) -> None:
    send_all(prefix_producer, "extract", "a", "b", "c", "d")
    consumer = prefix_bus.consumer(["extract"], "g")
    a, b, c, d = drain(consumer)
    consumer.ack(b)
    consumer.ack(d)
    assert bodies(drain(prefix_bus.consumer(["extract"], "g"))) == ["a", "b", "c", "d"]
    consumer.ack(a)
    assert bodies(drain(prefix_bus.consumer(["extract"], "g"))) == ["c", "d"]
    consumer.ack(c)
    assert drain(prefix_bus.consumer(["extract"], "g")) == []


def test_acking_twice_or_a_foreign_message_changes_nothing(bus: Bus, producer: Producer) -> None:
    send_all(producer, "extract", "a", "b")
    consumer = bus.consumer(["extract"], "g")
    a, b = drain(consumer)
    consumer.ack(a)
    consumer.ack(a)
    consumer.ack(Message("extract", "not sent", b.offset))
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["b"]
    with pytest.raises(ValueError, match="'done'"):
        consumer.ack(Message("done", "a", a.offset))


def test_each_group_gets_every_message(bus: Bus, producer: Producer) -> None:
    send_all(producer, "done", "a", "b")
    assert bodies(drain(bus.consumer(["done"], "audit"))) == ["a", "b"]
    scheduler = bus.consumer(["done"], "scheduler")
    for message in drain(scheduler):
        scheduler.ack(message)
    assert bodies(drain(bus.consumer(["done"], "audit"))) == ["a", "b"]
    assert drain(bus.consumer(["done"], "scheduler")) == []


def test_a_send_from_another_thread_wakes_a_blocked_receive(bus: Bus, producer: Producer) -> None:
    consumer = bus.consumer(["extract", "done"], "g")
    sender = threading.Timer(0.05, producer.send, args=("done", "late"))
    start = time.monotonic()
    sender.start()
    message = consumer.receive(timeout=10.0)
    elapsed = time.monotonic() - start
    sender.join()
    assert message is not None
    assert (message.topic, message.body) == ("done", "late")
    assert elapsed < 1.0


def test_close_wakes_a_blocked_receive_and_later_calls_raise(bus: Bus) -> None:
    consumer = bus.consumer(["extract"], "g")
    closer = threading.Timer(0.05, consumer.close)
    start = time.monotonic()
    closer.start()
    assert consumer.receive(timeout=10.0) is None
    closer.join()
    assert time.monotonic() - start < 1.0
    with pytest.raises(ValueError, match="closed"):
        consumer.receive(EMPTY)


def test_wakeup_from_another_thread_ends_a_blocked_receive(bus: Bus) -> None:
    consumer = bus.consumer(["extract"], "g")
    returned = threading.Event()
    results: list[Message | None] = []

    def receive() -> None:
        results.append(consumer.receive(timeout=30.0))
        returned.set()

    receiver = threading.Thread(target=receive)
    waker = threading.Timer(0.05, consumer.wakeup)
    receiver.start()
    waker.start()
    assert returned.wait(10.0), "receive(30) still blocked 10 s after wakeup()"
    receiver.join()
    waker.join()
    assert results == [None]


def test_a_wakeup_before_receive_makes_the_next_receive_return_none_once(
    bus: Bus, producer: Producer
) -> None:
    producer.send("extract", "a")
    consumer = bus.consumer(["extract"], "g")
    consumer.wakeup()
    consumer.wakeup()
    assert consumer.receive(timeout=30.0) is None
    message = consumer.receive(timeout=WAIT)
    assert message is not None
    assert message.body == "a"


def test_wakeup_after_close_does_nothing(bus: Bus) -> None:
    consumer = bus.consumer(["extract"], "g")
    consumer.close()
    consumer.wakeup()
    with pytest.raises(ValueError, match="closed"):
        consumer.receive(EMPTY)


def test_a_closed_producer_refuses_to_send(bus: Bus) -> None:
    producer = bus.producer()
    producer.send("extract", "a")
    producer.close()
    with pytest.raises(ValueError, match="closed"):
        producer.send("extract", "b")
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["a"]


@pytest.mark.parametrize("topic", ["", "a/b", "..", ".offsets", "../x", "a b", "tâche", "x\n"])
def test_invalid_topics_are_rejected(bus: Bus, producer: Producer, topic: str) -> None:
    named = re.escape(repr(topic))
    with pytest.raises(ValueError, match=named):
        producer.send(topic, "{}")
    with pytest.raises(ValueError, match=named):
        bus.consumer(["extract", topic], "g")


@pytest.mark.parametrize("group", ["", "a.b", "../g", "a/b"])
def test_invalid_groups_are_rejected(bus: Bus, group: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(group))):
        bus.consumer(["extract"], group)


@pytest.mark.parametrize("body", ["", "{}\n", '{"a":\n1}'])
def test_bodies_that_are_not_one_line_are_rejected(bus: Bus, producer: Producer, body: str) -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        producer.send("extract", body)
    assert drain(bus.consumer(["extract"], "g")) == []


def test_check_topic_accepts_file_safe_names() -> None:
    for topic in ["extract", "done", "retry-failed", "files", "v1.2_x", "a..b"]:
        assert check_topic(topic) == topic


# The file bus only.


def test_a_partial_line_waits_until_it_is_complete(file_bus: FileBus) -> None:
    path = file_bus.topic_path("extract")
    path.write_bytes(b'{"n": 1}\n{"n": ')
    consumer = file_bus.consumer(["extract"], "g")
    assert bodies(drain(consumer)) == ['{"n": 1}']
    with path.open("ab") as file:
        file.write(b"2}\n")
    message = consumer.receive(WAIT)
    assert message == Message("extract", '{"n": 2}', 9)


def test_concurrent_producers_never_interleave_lines(file_bus: FileBus) -> None:
    writers, count, padding = 4, 500, "x" * 300
    start = threading.Barrier(writers)

    def produce(writer: int) -> None:
        producer = file_bus.producer()
        start.wait()
        for n in range(count):
            producer.send("extract", json.dumps({"w": writer, "n": n, "pad": padding}))
        producer.close()

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = file_bus.topic_path("extract").read_text().splitlines()
    seen = [json.loads(line) for line in lines]
    for writer in range(writers):
        assert [s["n"] for s in seen if s["w"] == writer] == list(range(count))
    got = drain(file_bus.consumer(["extract"], "g"))
    assert bodies(got) == lines


def test_acks_resume_across_new_file_bus_objects(file_producer: Producer, tmp_path: Path) -> None:
    send_all(file_producer, "extract", "a", "b", "c")
    first = FileBus(tmp_path / "bus").consumer(["extract"], "g")
    a, b, _ = drain(first)
    first.ack(b)
    first.ack(a)
    assert bodies(drain(FileBus(tmp_path / "bus").consumer(["extract"], "g"))) == ["c"]


def test_the_offsets_file_holds_the_byte_offset_after_the_acked_prefix(
    file_bus: FileBus, file_producer: Producer
) -> None:
    send_all(file_producer, "retry-failed", "a", "bb", "ccc")
    consumer = file_bus.consumer(["retry-failed"], "g")
    a, bb, ccc = drain(consumer)
    assert [a.offset, bb.offset, ccc.offset] == [0, 2, 5]
    offsets = file_bus.folder / ".offsets"
    consumer.ack(a)
    assert read_offset(offsets / "g.retry-failed") == 2
    consumer.ack(ccc)
    assert read_offset(offsets / "g.retry-failed") == 2
    consumer.ack(bb)
    assert read_offset(offsets / "g.retry-failed") == 9
    assert [p.name for p in offsets.iterdir()] == ["g.retry-failed"]


def test_a_truncated_topic_file_is_read_again_from_the_start(
    file_bus: FileBus, file_producer: Producer, caplog: pytest.LogCaptureFixture
) -> None:
    send_all(file_producer, "extract", "old-1", "old-2")
    first = file_bus.consumer(["extract"], "g")
    for message in drain(first):
        first.ack(message)
    file_bus.topic_path("extract").write_text("new\n")
    with caplog.at_level(logging.WARNING, logger="flowlord.bus"):
        again = file_bus.consumer(["extract"], "g")
        assert drain(again) == [Message("extract", "new", 0)]
    assert "extract.jsonl shrank" in caplog.text
    assert read_offset(file_bus.offset_path("g", "extract")) == 0


def test_a_running_consumer_follows_a_truncated_topic_file(
    file_bus: FileBus, file_producer: Producer
) -> None:
    send_all(file_producer, "extract", "old-1", "old-2")
    consumer = file_bus.consumer(["extract"], "g")
    old_1, _ = drain(consumer)
    file_bus.topic_path("extract").write_text("new\n")
    assert bodies(drain(consumer)) == ["new"]
    consumer.ack(old_1)
    assert read_offset(file_bus.offset_path("g", "extract")) == 0


def test_any_complete_line_is_a_body_and_empty_lines_are_skipped(file_bus: FileBus) -> None:
    file_bus.topic_path("files").write_bytes(b"\n\nnot json\n\n\xff{}\n")
    consumer = file_bus.consumer(["files"], "g")
    first, second = drain(consumer)
    assert (first.body, first.offset, second.body, second.offset) == ("not json", 2, "\ufffd{}", 12)
    consumer.ack(first)
    consumer.ack(second)
    assert read_offset(file_bus.offset_path("g", "files")) == 16


def test_a_rejected_body_writes_nothing(file_bus: FileBus, file_producer: Producer) -> None:
    with pytest.raises(ValueError, match="one non-empty line"):
        file_producer.send("extract", '{"a": 1}\n{"b": 2}')
    assert not file_bus.topic_path("extract").exists()


def test_a_missing_topic_file_is_empty_and_not_created(file_bus: FileBus) -> None:
    assert file_bus.consumer(["never"], "g").receive(EMPTY) is None
    assert list(file_bus.folder.iterdir()) == []


def test_a_corrupt_offsets_file_is_an_error_naming_it(file_bus: FileBus) -> None:
    path = file_bus.folder / ".offsets" / "g.extract"
    path.parent.mkdir()
    path.write_text("12abc\n")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        file_bus.consumer(["extract"], "g")
