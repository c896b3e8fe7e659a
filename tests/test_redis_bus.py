"""What only the Redis Streams bus promises, against a real redis-server: per-message acks,
taking over what dead consumers left, the heartbeat, trimming, and riding out outages.

Faults are real: a consumer in a child process killed with SIGKILL, the server killed with
SIGKILL and started again. Waits are bounded: `receive` blocks with a timeout, and
conditions are polled until a deadline.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from flowlord.bus import BusUnavailable, Consumer, Message, Producer
from flowlord.bus.streams import RedisBus, redacted
from tests.redis_server import RedisServer, free_port

REPO = Path(__file__).resolve().parent.parent
WAIT = 5.0
EMPTY = 0.05
KEY = "flowlord:extract"
LOGGER = "flowlord.bus.redis"

HOLD_AND_HANG = textwrap.dedent("""
    import sys
    from flowlord.bus.streams import RedisBus
    consumer = RedisBus(sys.argv[1], claim_idle=float(sys.argv[2])).consumer(
        ["extract"], "g", count=2
    )
    message = consumer.receive(10.0)
    print(consumer.name, message.body, flush=True)
    sys.stdin.read()  # holds both messages, beating, until killed
""")


@pytest.fixture
def make_bus(redis_url: str) -> Iterator[Callable[..., RedisBus]]:
    """RedisBus objects on the test server, closed (with all they made) after the test."""
    made: list[RedisBus] = []

    def make(**options: float) -> RedisBus:
        made.append(RedisBus(redis_url, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for bus in made:
        bus.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client, to look at and tamper with what the bus keeps."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


def drain(consumer: Consumer) -> list[Message]:
    messages = []
    while (message := consumer.receive(EMPTY)) is not None:
        messages.append(message)
    return messages


def receive_n(consumer: Consumer, count: int) -> list[Message]:
    """`count` messages, each within WAIT seconds."""
    messages = []
    for _ in range(count):
        message = consumer.receive(WAIT)
        assert message is not None, f"got {len(messages)} of {count} messages"
        messages.append(message)
    return messages


def bodies(messages: list[Message]) -> list[str]:
    return [message.body for message in messages]


def until(check: Callable[[], object], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        threading.Event().wait(0.01)  # bounded polling


def owners(raw: redis.Redis, group: str = "g") -> dict[str, str]:
    """Pending entry ID -> the consumer that holds it."""
    pending = raw.xpending_range(KEY, group, "-", "+", 1000)
    return {p["message_id"].decode(): p["consumer"].decode() for p in pending}


def consumer_names(raw: redis.Redis, group: str = "g") -> set[str]:
    return {c["name"].decode() for c in raw.xinfo_consumers(KEY, group)}


def _blocked(raw: redis.Redis) -> bool:
    """Whether a client waits in a blocking XREADGROUP now."""
    return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in raw.client_list())


def send_all(producer: Producer, *items: str) -> None:
    for body in items:
        producer.send("extract", body)


# Acks are per message.


def test_an_acked_message_never_comes_again_and_unacked_ones_go_to_the_next_holder(
    make_bus: Callable[..., RedisBus],
) -> None:
    bus = make_bus(claim_idle=60.0)
    send_all(bus.producer(), "a", "b", "c", "d")
    first = bus.consumer(["extract"], "g")
    a, b, _, d = drain(first)
    first.ack(b)
    first.ack(d)
    assert drain(bus.consumer(["extract"], "g")) == []  # a, c: held by a live consumer
    first.close()
    second = bus.consumer(["extract"], "g")
    assert bodies(drain(second)) == ["a", "c"]  # not the prefix: b and d are done
    second.ack(a)
    second.close()
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["c"]


def test_close_releases_delivered_and_buffered_messages_at_once(
    make_bus: Callable[..., RedisBus],
) -> None:
    bus = make_bus(claim_idle=60.0)
    send_all(bus.producer(), "a", "b", "c")
    holder = bus.consumer(["extract"], "g", count=3)
    assert bodies(receive_n(holder, 1)) == ["a"]  # b and c wait in it
    holder.close()
    start = time.monotonic()
    assert bodies(drain(bus.consumer(["extract"], "g"))) == ["a", "b", "c"]
    assert time.monotonic() - start < 1.0


# Taking over from dead consumers, and not from live ones.


@pytest.mark.slow
def test_the_heartbeat_keeps_a_live_consumers_message_past_claim_idle(
    make_bus: Callable[..., RedisBus], raw: redis.Redis
) -> None:
    bus = make_bus(claim_idle=0.3)
    send_all(bus.producer(), "long task")
    holder = bus.consumer(["extract"], "g")
    (message,) = receive_n(holder, 1)
    other = bus.consumer(["extract"], "g")
    assert other.receive(1.2) is None  # four claim_idle periods, sweeping every 0.15 s
    assert owners(raw) == {message.entry: holder.name}
    holder.ack(message)
    holder.close()
    assert drain(other) == []


@pytest.mark.slow
def test_a_killed_consumers_messages_go_to_another_after_claim_idle(
    make_bus: Callable[..., RedisBus], redis_url: str, raw: redis.Redis
) -> None:
    claim_idle = 0.5
    bus = make_bus(claim_idle=claim_idle)
    send_all(bus.producer(), "a", "b")
    command = [sys.executable, "-c", HOLD_AND_HANG, redis_url, str(claim_idle)]
    with subprocess.Popen(
        command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as child:
        assert child.stdout is not None
        name, body = child.stdout.readline().decode().split()
        assert body == "a"
        child.kill()
        killed = time.monotonic()
    assert set(owners(raw).values()) == {name}  # a, and b in its buffer
    heir = bus.consumer(["extract"], "g")
    assert heir.receive(0) is None  # its last heartbeat was under claim_idle / 3 ago
    got = receive_n(heir, 2)
    assert bodies(got) == ["a", "b"]
    assert time.monotonic() - killed > claim_idle * 2 / 3 - 0.05
    assert set(owners(raw).values()) == {heir.name}


def test_the_heartbeat_never_takes_back_what_another_consumer_took_over(
    make_bus: Callable[..., RedisBus], raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus(claim_idle=0.3)
    send_all(bus.producer(), "a")
    holder = bus.consumer(["extract"], "g")
    (message,) = receive_n(holder, 1)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        raw.xclaim(KEY, "g", "intruder", 0, [message.entry], justid=True)
        until(lambda: "it may run twice" in caplog.text, "the heartbeat's warning")
    assert f"consumer intruder took over message {message.entry}" in caplog.text
    holder.ack(message)  # no longer its own: changes nothing
    assert owners(raw) == {message.entry: "intruder"}


def test_pending_messages_trimmed_away_are_acked_and_reported(
    make_bus: Callable[..., RedisBus], raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus(claim_idle=60.0)
    send_all(bus.producer(), "a", "b")
    holder = bus.consumer(["extract"], "g", count=2)
    lost = [m.entry for m in receive_n(holder, 2)]
    holder.close()
    raw.xtrim(KEY, maxlen=0)
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        assert drain(bus.consumer(["extract"], "g")) == []
    assert "2 message(s) were trimmed before group g finished them" in caplog.text
    assert ", ".join(lost) in caplog.text
    assert raw.xpending(KEY, "g")["pending"] == 0


def test_idle_consumers_holding_nothing_are_forgotten(
    make_bus: Callable[..., RedisBus], raw: redis.Redis
) -> None:
    bus = make_bus(claim_idle=60.0, forget_idle=0.2)
    producer = bus.producer()
    idle = bus.consumer(["extract"], "g")
    producer.send("extract", "a")
    idle.ack(*receive_n(idle, 1))
    idle.close()
    holder = bus.consumer(["extract"], "g")
    producer.send("extract", "b")
    receive_n(holder, 1)
    assert {idle.name, holder.name} <= consumer_names(raw)

    def forgotten() -> bool:
        sweeper = bus.consumer(["extract"], "g")  # a new consumer sweeps at its first receive
        sweeper.receive(EMPTY)
        sweeper.close()
        return idle.name not in consumer_names(raw)

    until(forgotten, "the idle consumer to be forgotten")
    assert holder.name in consumer_names(raw)  # idle as long, but it holds a message


# Trimming.


@pytest.mark.slow
def test_the_max_len_cap_bounds_a_stream_and_warns_once(
    make_bus: Callable[..., RedisBus], raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    producer = make_bus(max_len=1000).producer()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for n in range(3000):
            producer.send("extract", str(n))
    assert 1000 <= raw.xlen(KEY) <= 1100  # MAXLEN ~ trims by whole nodes of 100 entries
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "topic extract" in warnings[0]
    assert "redis_max_len = 1000" in warnings[0]
    assert "dropped even if unread" in warnings[0]


@pytest.mark.slow
def test_entries_every_group_finished_are_trimmed_and_no_others(
    make_bus: Callable[..., RedisBus], raw: redis.Redis
) -> None:
    bus = make_bus()
    worker = bus.consumer(["extract"], "g", count=100)
    audit = bus.consumer(["extract"], "audit", count=100)
    send_all(bus.producer(), *[str(n) for n in range(1200)])
    messages = drain(worker)
    kept = messages[600]
    for message in messages:
        if message != kept:
            worker.ack(message)

    bus.producer().send("extract", "1200")  # a new producer trims at its first send
    assert raw.xlen(KEY) == 1201, "audit has read nothing yet"

    for message in drain(audit):
        audit.ack(message)
    bus.producer().send("extract", "1201")
    # Trimming is by whole nodes of 100 entries (MINID ~): up to 99 more stay.
    assert 602 <= raw.xlen(KEY) <= 701, "worker still holds message 600"
    assert raw.xrange(KEY, kept.entry, kept.entry)

    worker.ack(kept)
    for message in drain(worker):
        worker.ack(message)
    bus.producer().send("extract", "1202")
    assert raw.xlen(KEY) <= 101, "what both groups finished is gone"


# Bodies Redis holds that flowlord did not write.


def test_an_entry_without_body_or_with_invalid_utf8_is_a_bad_body(
    make_bus: Callable[..., RedisBus], raw: redis.Redis
) -> None:
    bus = make_bus()
    raw.xadd(KEY, {"other": "x"})
    raw.xadd(KEY, {"body": b"\xff{}"})
    bus.producer().send("extract", "fine")
    consumer = bus.consumer(["extract"], "g")
    got = drain(consumer)
    assert bodies(got) == ["", "\ufffd{}", "fine"]
    for message in got:
        consumer.ack(message)
    consumer.close()
    assert drain(bus.consumer(["extract"], "g")) == []


# Redis losing its data, or going away.


def test_a_group_lost_with_redis_data_is_created_again(
    make_bus: Callable[..., RedisBus], raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bus = make_bus()
    consumer = bus.consumer(["extract"], "g")
    assert consumer.receive(0) is None
    raw.flushall()
    bus.producer().send("extract", "after")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert bodies(receive_n(consumer, 1)) == ["after"]
    assert "consumer group g of extract is missing" in caplog.text


def test_a_group_lost_during_a_blocked_receive_is_created_again(
    make_bus: Callable[..., RedisBus], raw: redis.Redis
) -> None:
    bus = make_bus(claim_idle=60.0)
    consumer = bus.consumer(["extract"], "g")
    results: list[Message | None] = []
    receiver = threading.Thread(target=lambda: results.append(consumer.receive(WAIT)))
    receiver.start()
    until(lambda: _blocked(raw), "the blocked read")
    raw.flushall()
    bus.producer().send("extract", "after")
    receiver.join()
    assert bodies([m for m in results if m is not None]) == ["after"]


def test_a_blocked_receive_rides_out_a_redis_restart(
    make_bus: Callable[..., RedisBus],
    redis_server: RedisServer,
    raw: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = make_bus(claim_idle=60.0)
    producer = bus.producer()
    consumer = bus.consumer(["extract"], "g")
    producer.send("extract", "before")
    consumer.ack(*receive_n(consumer, 1))
    results: list[Message | None] = []
    receiver = threading.Thread(target=lambda: results.append(consumer.receive(3 * WAIT)))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        receiver.start()
        until(lambda: _blocked(raw), "the blocked read")
        redis_server.kill()
        until(lambda: "lost Redis at" in caplog.text, "the receive to notice the outage")
        redis_server.start()
        _send_when_back(producer, "after")
        receiver.join()
    (after,) = results
    assert after is not None
    assert after.body == "after"
    assert "reconnected to Redis at" in caplog.text
    consumer.ack(after)
    consumer.close()
    assert drain(bus.consumer(["extract"], "g")) == []  # "before" stayed acked


def test_sends_fail_fast_while_redis_is_down_and_nothing_acknowledged_is_lost(
    make_bus: Callable[..., RedisBus], redis_server: RedisServer
) -> None:
    bus = make_bus(claim_idle=60.0)
    producer = bus.producer()
    consumer = bus.consumer(["extract"], "g")
    send_all(producer, "a", "b", "c")
    a, b = receive_n(consumer, 2)
    consumer.ack(a)
    redis_server.kill()

    consumer.ack(b)  # kept, and sent once Redis is back
    assert consumer.receive(0.2) is None
    with pytest.raises(BusUnavailable, match=f"127.0.0.1:{redis_server.port}"):
        producer.send("extract", "d")
    start = time.monotonic()
    with pytest.raises(BusUnavailable):
        producer.send("extract", "d")
    assert time.monotonic() - start < 0.02, "a send during the backoff window waited"

    redis_server.start()
    _send_when_back(producer, "d")
    later = receive_n(consumer, 2)
    assert bodies(later) == ["c", "d"]  # c was answered before the kill: the AOF kept it
    for message in later:
        consumer.ack(message)
    consumer.close()
    assert drain(bus.consumer(["extract"], "g")) == []  # a, and b acked during the outage


def _send_when_back(producer: Producer, body: str) -> None:
    def sent() -> bool:
        try:
            producer.send("extract", body)
        except BusUnavailable:
            return False
        return True

    until(sent, "Redis to take sends again")


def test_check_names_an_unreachable_server_but_never_its_password() -> None:
    port = free_port()
    bus = RedisBus(f"redis://:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(BusUnavailable) as caught:
        bus.check()
    bus.close()
    assert f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0: " in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_check_passes_on_a_running_server(make_bus: Callable[..., RedisBus]) -> None:
    make_bus().check()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://user:s3cret@host/1", "redis://user:***@host/1"),
        ("redis://user@host", "redis://user@host"),
        ("rediss://u:p@ss@host:6380", "rediss://u:***@host:6380"),
        ("unix://:pw@/run/redis.sock", "unix://:***@/run/redis.sock"),
        ("unix:///run/redis.sock?db=1&password=pw", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://host/0?Password=pw&x=1", "redis://host/0?Password=***&x=1"),
        ("user:pw@host", "***"),
    ],
)
def test_redacted_hides_passwords(url: str, shown: str) -> None:
    assert redacted(url) == shown


# Ending a blocked receive: CLIENT UNBLOCK, not the end of a one-second slice.


@pytest.mark.parametrize("end", ["wakeup", "close"])
def test_wakeup_and_close_end_a_blocked_receive_at_once(
    make_bus: Callable[..., RedisBus], raw: redis.Redis, end: str
) -> None:
    consumer = make_bus(claim_idle=60.0).consumer(["extract"], "g")
    results: list[Message | None] = []
    receiver = threading.Thread(target=lambda: results.append(consumer.receive(30.0)))
    receiver.start()
    until(lambda: _blocked(raw), "the blocked read")
    start = time.monotonic()
    getattr(consumer, end)()
    receiver.join(5.0)
    assert not receiver.is_alive()
    assert time.monotonic() - start < 0.5
    assert results == [None]
