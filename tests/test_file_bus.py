"""What only the file bus promises: waking on change, bounded reads, cheap offsets, segments.

Real files under tmp_path and real processes where processes matter. Nothing waits on a fixed
sleep: receives block on the bus with a timeout, and other processes are read line by line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlord.bus import BusFolderError, Consumer, FileBus, Message, Producer
from flowlord.bus.offsets import SLOT, encode_slot, read_offset

REPO = Path(__file__).resolve().parent.parent
WAIT = 10.0
EMPTY = 0.05
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="inotify and /proc are Linux")

PRODUCE = textwrap.dedent("""
    import json, sys
    from flowlord.bus import FileBus
    folder, segment, writer, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    producer = FileBus(folder, segment_bytes=segment).producer()
    for n in range(count):
        producer.send("t", json.dumps({"w": writer, "n": n, "pad": "x" * (n % 40)}))
    producer.close()
""")

CONSUME_AND_ACK = textwrap.dedent("""
    import os, sys
    from flowlord.bus import FileBus
    consumer = FileBus(sys.argv[1], segment_bytes=int(sys.argv[2])).consumer(["t"], "g")
    def say(*words):
        os.write(1, (" ".join(words) + "\\n").encode())  # one write: a kill never tears it
    while (batch := [m for m in [consumer.receive(5.0)] if m is not None]):
        while len(batch) < 50 and (more := consumer.receive(0)) is not None:
            batch.append(more)
        for message in batch:
            say("got", message.body)
        for message in batch:
            say("acking", message.body)
            consumer.ack(message)
            say("acked", message.body)
""")


def run_python(script: str, *args: object, stdout: int | None = None) -> subprocess.Popen[str]:
    """Run `script` with this interpreter and the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(command, env=env, stdout=stdout, text=True)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "bus"


@pytest.fixture
def producer(folder: Path) -> Iterator[Producer]:
    made = FileBus(folder).producer()
    yield made
    made.close()


def drain(consumer: Consumer, *, ack: bool = False) -> list[Message]:
    messages = []
    while (message := consumer.receive(EMPTY)) is not None:
        messages.append(message)
        if ack:
            consumer.ack(message)
    return messages


def receive_all(consumer: Consumer, count: int) -> list[Message]:
    """`count` messages, each arriving within WAIT seconds, acked as they come."""
    got = []
    for _ in range(count):
        message = consumer.receive(WAIT)
        assert message is not None, f"only {len(got)} of {count} messages arrived"
        consumer.ack(message)
        got.append(message)
    return got


class Receiver(threading.Thread):
    """`consumer.receive(timeout)` in a thread; `returned` is set when it has returned."""

    def __init__(self, consumer: Consumer, *, timeout: float) -> None:
        super().__init__()
        self.consumer = consumer
        self.timeout = timeout
        self.returned = threading.Event()
        self.message: Message | None = None

    def run(self) -> None:
        self.message = self.consumer.receive(self.timeout)
        self.returned.set()


def read_chars() -> int:
    """Bytes this process has read through read() calls so far."""
    text = Path("/proc/self/io").read_text()
    match = re.search(r"^rchar: (\d+)$", text, re.MULTILINE)
    assert match is not None
    return int(match[1])


# Waking


@linux_only
def test_inotify_wakes_a_receive_on_a_line_appended_by_another_process(folder: Path) -> None:
    bus = FileBus(folder, poll_interval=60.0, safety_poll=60.0)
    consumer = bus.consumer(["t"], "g")
    for round_ in range(3):
        assert consumer.receive(0) is None
        receiver = Receiver(consumer, timeout=30.0)
        receiver.start()
        # Python's start-up puts the append well after the receive blocks. Only an inotify
        # wake-up ends it within WAIT: the safety poll and poll interval are 60 s.
        writer = run_python(PRODUCE, folder, 1 << 20, f"p{round_}", 1)
        assert receiver.returned.wait(WAIT), "no wake-up: the receive is still blocked"
        receiver.join()
        assert writer.wait(WAIT) == 0
        message = receiver.message
        assert message is not None
        assert json.loads(message.body)["w"] == f"p{round_}"
        consumer.ack(message)


def test_without_inotify_a_consumer_polls(folder: Path, producer: Producer) -> None:
    consumer = FileBus(folder, poll_interval=0.01, notify=False).consumer(["t"], "g")
    sender = threading.Timer(0.05, producer.send, args=("t", "late"))
    sender.start()
    message = consumer.receive(timeout=WAIT)
    sender.join()
    assert message is not None
    assert message.body == "late"


# Partial and oversized lines


@linux_only
@pytest.mark.parametrize("notify", [True, False])
def test_a_partial_line_is_not_read_again_while_idle(folder: Path, notify: bool) -> None:
    bus = FileBus(folder, poll_interval=0.01, notify=notify)
    path = bus.topic_path("t")
    path.write_bytes(b'{"n": 1}\n' + b"x" * 5_000_000)
    consumer = bus.consumer(["t"], "g")
    first = consumer.receive(WAIT)
    assert first is not None
    assert first.body == '{"n": 1}'
    assert consumer.receive(0.01) is None  # has scanned the partial line once
    before = read_chars()
    for _ in range(50):
        assert consumer.receive(0.01) is None
    assert read_chars() - before < 1_000_000
    with path.open("ab") as file:
        file.write(b"y\n")
    message = consumer.receive(WAIT)
    assert message is not None
    assert (message.offset, len(message.body)) == (9, 5_000_001)
    assert message.body.endswith("xy")


def test_an_oversized_line_is_skipped_logged_and_committed_past(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = FileBus(folder, poll_interval=0.01, max_message_size=100)
    path = bus.topic_path("t")
    path.write_bytes(b"a\n" + b"x" * 150)
    consumer = bus.consumer(["t"], "g")
    with caplog.at_level(logging.ERROR, logger="flowlord.bus"):
        a = consumer.receive(WAIT)
        assert a is not None
        assert consumer.receive(0.01) is None
        with path.open("ab") as file:
            file.write(b"x" * 150 + b"\nb\n")
        b = consumer.receive(WAIT)
    assert (a.body, b and b.body, b and b.offset) == ("a", "b", 303)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["topic t: message at offset 2 is 300 bytes, over the maximum of 100: skipped"]
    consumer.ack(a)
    assert read_offset(bus.offset_path("g", "t")) == 303
    assert [m.body for m in drain(bus.consumer(["t"], "g"))] == ["b"]


def test_a_producer_refuses_a_message_over_the_maximum(folder: Path) -> None:
    producer = FileBus(folder, max_message_size=10).producer()
    with pytest.raises(ValueError, match="11 bytes for topic 't' is over the bus's maximum of 10"):
        producer.send("t", "x" * 11)
    producer.send("t", "x" * 10)
    producer.close()


# Offsets


def saved_slots(path: Path) -> list[tuple[int, int]]:
    data = path.read_bytes()
    return [(int(data[i : i + 20]), int(data[i + 21 : i + 41])) for i in range(0, len(data), SLOT)]


def test_acks_write_the_offset_in_place_in_alternate_slots(
    folder: Path, producer: Producer
) -> None:
    bus = FileBus(folder)
    for body in ["a", "bb", "ccc"]:
        producer.send("t", body)
    consumer = bus.consumer(["t"], "g")
    a, bb, ccc = drain(consumer)
    path = bus.offset_path("g", "t")
    inode = path.stat().st_ino
    for message in (a, bb, ccc):
        consumer.ack(message)
        assert read_offset(path) == message.offset + len(message.body) + 1
    assert path.stat().st_ino == inode
    assert path.stat().st_size == 2 * SLOT
    assert sorted(saved_slots(path)) == [(3, 5), (4, 9)]
    assert read_offset(path) == 9


def test_a_later_consumer_of_the_group_continues_the_saved_sequence(
    folder: Path, producer: Producer
) -> None:
    bus = FileBus(folder)
    for body in ["a", "bb", "ccc", "dddd"]:
        producer.send("t", body)
    earlier = bus.consumer(["t"], "g")
    for message in drain(earlier)[:3]:
        earlier.ack(message)
    later = bus.consumer(["t"], "g")
    (dddd,) = drain(later)
    later.ack(dddd)
    assert read_offset(bus.offset_path("g", "t")) == 14


@pytest.mark.parametrize("damage", ["flipped digit", "torn write"])
def test_a_damaged_newest_slot_falls_back_to_the_other(
    folder: Path, producer: Producer, damage: str
) -> None:
    bus = FileBus(folder)
    for body in ["a", "bb", "ccc"]:
        producer.send("t", body)
    consumer = bus.consumer(["t"], "g")
    a, bb, _ = drain(consumer)
    consumer.ack(a)
    consumer.ack(bb)
    consumer.close()
    path = bus.offset_path("g", "t")
    data = bytearray(path.read_bytes())
    newest = max(range(2), key=lambda slot: saved_slots(path)[slot])
    start = newest * SLOT
    if damage == "flipped digit":
        data[start + 40] = ord("7")
    else:  # a crash wrote the first half of the next slot over the newest one
        data[start : start + 30] = encode_slot(9, 9)[:30]
    path.write_bytes(bytes(data))
    assert read_offset(path) == 2
    assert [m.body for m in drain(bus.consumer(["t"], "g"))] == ["bb", "ccc"]


def test_an_offsets_file_in_the_old_decimal_format_loads(folder: Path, producer: Producer) -> None:
    bus = FileBus(folder)
    for body in ["a", "bb", "ccc"]:
        producer.send("t", body)
    path = bus.offset_path("g", "t")
    path.parent.mkdir()
    path.write_text("5\n")
    consumer = bus.consumer(["t"], "g")
    (ccc,) = drain(consumer)
    assert ccc.body == "ccc"
    consumer.ack(ccc)
    assert read_offset(path) == 9
    assert drain(bus.consumer(["t"], "g")) == []


# The bus folder


def test_a_bus_folder_that_is_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bus"
    path.write_text("not a folder")
    with pytest.raises(BusFolderError, match=re.escape(f"bus folder {path}: exists and is not")):
        FileBus(path)
    with pytest.raises(ValueError, match=re.escape(f"bus folder {path / 'sub'}: cannot be")):
        FileBus(path / "sub")


# Segments


def send_numbered(producer: Producer, count: int) -> None:
    """Lines `m000000000` ... of 10 bytes each, newline included."""
    for n in range(count):
        producer.send("t", f"m{n:08d}")


def test_a_roll_seals_the_segment_and_offsets_stay_logical(folder: Path) -> None:
    bus = FileBus(folder, segment_bytes=64)
    producer = bus.producer()
    send_numbered(producer, 20)
    producer.close()
    files = bus.topic_files("t")
    assert [(s.base, s.path.name) for s in files.sealed()] == [
        (0, "t.jsonl.00000000000000000000"),
        (70, "t.jsonl.00000000000000000070"),
    ]
    assert files.base_path.read_text() == "140\n"
    assert files.active.read_bytes() == b"".join(f"m{n:08d}\n".encode() for n in range(14, 20))
    consumer = bus.consumer(["t"], "g")
    got = drain(consumer, ack=True)
    assert [(m.body, m.offset) for m in got] == [(f"m{n:08d}", 10 * n) for n in range(20)]
    assert files.sealed() == []
    assert read_offset(bus.offset_path("g", "t")) == 200
    assert drain(bus.consumer(["t"], "g")) == []
    # A new group starts at the earliest data left.
    assert [m.offset for m in drain(bus.consumer(["t"], "new"))] == list(range(140, 200, 10))


def test_a_roll_cut_short_before_the_new_base_keeps_offsets_right(folder: Path) -> None:
    bus = FileBus(folder)
    producer = bus.producer()
    for body in ["a", "bb", "ccc"]:
        producer.send("t", body)
    files = bus.topic_files("t")
    os.rename(files.active, files.sealed_path(0))  # sealed, then the process died
    producer.send("t", "dddd")
    producer.close()
    consumer = bus.consumer(["t"], "g")
    got = drain(consumer, ack=True)
    assert [(m.body, m.offset) for m in got] == [("a", 0), ("bb", 2), ("ccc", 5), ("dddd", 9)]
    assert files.sealed() == []
    assert files.read_base() == 9


def test_a_group_behind_deleted_segments_resumes_at_the_earliest_data(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = FileBus(folder, segment_bytes=64)
    producer = bus.producer()
    send_numbered(producer, 20)
    producer.close()
    assert len(drain(bus.consumer(["t"], "a"), ack=True)) == 20
    late = bus.offset_path("late", "t")
    late.write_text("10\n")
    with caplog.at_level(logging.WARNING, logger="flowlord.bus"):
        got = drain(bus.consumer(["t"], "late"))
    assert [m.offset for m in got] == list(range(140, 200, 10))
    assert "offset 10 is in deleted segments: resuming at the earliest data, 140" in caplog.text
    assert read_offset(late) == 140


def test_producer_processes_roll_segments_while_two_groups_read(folder: Path) -> None:
    writers, count, segment = 4, 2000, 4096
    bus = FileBus(folder, segment_bytes=segment)
    first = bus.producer()
    first.send("t", json.dumps({"w": "first", "n": 0}))
    first.close()
    lagging = bus.consumer(["t"], "lagging")
    assert lagging.receive(WAIT) is not None  # the group is known from now on
    lagging.close()

    processes = [
        run_python(PRODUCE, folder, segment, f"p{w}", count, stdout=subprocess.DEVNULL)
        for w in range(writers)
    ]
    main = bus.consumer(["t"], "main")
    got = receive_all(main, 1 + writers * count)
    for process in processes:
        assert process.wait(WAIT) == 0
    assert main.receive(EMPTY) is None
    seen = [json.loads(m.body) for m in got]
    for writer in range(writers):
        assert [s["n"] for s in seen if s["w"] == f"p{writer}"] == list(range(count))
    offsets = [m.offset for m in got]
    assert offsets == sorted(set(offsets))

    files = bus.topic_files("t")
    sealed = files.sealed()
    assert sealed[0].base == 0
    assert len(sealed) > 20  # kept: the lagging group has not passed them

    lagging = bus.consumer(["t"], "lagging")
    half = receive_all(lagging, len(got) // 2)
    lagging.close()
    committed = read_offset(bus.offset_path("lagging", "t"))
    assert committed is not None
    assert 0 < files.sealed()[0].base <= committed
    rest = drain(bus.consumer(["t"], "lagging"), ack=True)
    assert [m.offset for m in half + rest] == offsets
    assert [m.body for m in half + rest] == [m.body for m in got]
    assert files.sealed() == []


def test_a_consumer_killed_while_acking_skips_nothing(folder: Path) -> None:
    count, segment = 20_000, 4096
    producer = FileBus(folder, segment_bytes=segment).producer()
    for n in range(count):
        producer.send("t", str(n))
    producer.close()

    child = run_python(CONSUME_AND_ACK, folder, segment, stdout=subprocess.PIPE)
    assert child.stdout is not None
    events: list[tuple[str, int]] = []
    for line in child.stdout:
        kind, number = line.split()
        events.append((kind, int(number)))
        if kind == "acked" and number == "2000":
            break
    child.send_signal(signal.SIGKILL)
    events += [(kind, int(n)) for kind, n in map(str.split, child.stdout.read().splitlines())]
    child.stdout.close()
    assert child.wait(WAIT) == -signal.SIGKILL

    acked = [n for kind, n in events if kind == "acked"]
    acking = [n for kind, n in events if kind == "acking"]
    assert acked == list(range(len(acked)))
    assert 2000 < len(acked) < count
    rest = drain(FileBus(folder, segment_bytes=segment).consumer(["t"], "g"))
    first = int(rest[0].body)
    # Only a message whose ack was under way when the kill came may go either way.
    assert len(acked) <= first <= len(acking)
    assert [int(m.body) for m in rest] == list(range(first, count))
