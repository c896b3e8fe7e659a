"""File bus benchmark: messages/s in one process, ack cost, and cross-process wake latency.

Run: python bench/bus_bench.py [--messages 100000] [--size 200] [--wakes 200]
Each figure sits beside a floor measured in the same run (raw os.write of the same lines, a raw
read of the file, a bare os.pwrite, a bare inotify + poll reader), because the machine is shared
and noisy: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flowlord.bus import FileBus
from flowlord.bus.offsets import encode_slot
from flowlord.bus.wake import open_inotify

PRODUCER = textwrap.dedent("""
    import sys, time
    from flowlord.bus import FileBus
    folder, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    producer = FileBus(folder).producer()
    time.sleep(0.3)  # let the reader settle in its wait
    for _ in range(count):
        producer.send("wake", str(time.monotonic_ns()))
        time.sleep(gap)
    producer.close()
""")


def rate(count: int, run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def throughput(folder: Path, lines: list[str]) -> dict[str, float]:
    """Messages/s of each in-process case and its floor, on fresh topics."""
    count = len(lines)
    encoded = [line.encode() + b"\n" for line in lines]
    floor_path = folder / "floor.raw"
    fd = os.open(floor_path, os.O_APPEND | os.O_CREAT | os.O_WRONLY)
    results = {"floor: os.write per line": rate(count, lambda: [os.write(fd, b) for b in encoded])}
    os.close(fd)

    def raw_read() -> None:
        with open(floor_path, "rb") as file:
            while chunk := file.read(1 << 20):
                chunk.split(b"\n")

    results["floor: read + split lines"] = rate(count, raw_read)

    bus = FileBus(folder / "bus")
    producer = bus.producer()
    results["FileBus send"] = rate(count, lambda: [producer.send("t", line) for line in lines])
    for group, acks in (("no-ack", False), ("ack", True)):
        consumer = bus.consumer(["t"], group)

        def consume(consumer=consumer, acks=acks) -> None:
            while (message := consumer.receive(0)) is not None:
                if acks:
                    consumer.ack(message)

        results[f"FileBus receive{' + ack' if acks else ''}"] = rate(count, consume)
        consumer.close()

    consumer = bus.consumer(["both"], "g")

    def round_trip() -> None:
        for line in lines:
            producer.send("both", line)
            message = consumer.receive(0)
            if message is not None:
                consumer.ack(message)

    results["FileBus send + receive + ack"] = rate(count, round_trip)
    consumer.close()
    producer.close()
    return results


def ack_costs(folder: Path, count: int) -> dict[str, float]:
    """Microseconds per ack, beside a bare pwrite and the old temp file + rename."""
    fd = os.open(folder / "pwrite", os.O_RDWR | os.O_CREAT)
    slots = [encode_slot(n, n * 10) for n in range(count)]
    pwrite = 1e6 / rate(
        count, lambda: [os.pwrite(fd, s, (n % 2) * 64) for n, s in enumerate(slots)]
    )
    os.close(fd)

    def renames() -> None:
        for n in range(count // 10):
            temp = folder / f".offset.{n}.tmp"
            temp.write_text(f"{n}\n")
            os.replace(temp, folder / "offset")

    renamed = 1e6 / rate(count // 10, renames)
    bus = FileBus(folder / "acks")
    producer = bus.producer()
    for n in range(count):
        producer.send("t", f"message {n}")
    producer.close()
    consumer = bus.consumer(["t"], "g")
    messages = [consumer.receive(0) for _ in range(count)]
    start = time.perf_counter()
    for message in messages:
        if message is not None:
            consumer.ack(message)
    acked = (time.perf_counter() - start) * 1e6 / count
    consumer.close()
    return {
        "floor: os.pwrite of one 64-byte slot": pwrite,
        "FileBus ack (slot written in place)": acked,
        "old ack (temp file + os.replace)": renamed,
    }


def producer_process(folder: Path, count: int, gap: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-c", PRODUCER, str(folder), str(count), str(gap)]
    return subprocess.Popen(command, env=env)


def latencies_bare(folder: Path, count: int, gap: float) -> list[float]:
    """The floor: inotify + poll on the folder, os.read on a kept-open file, no bus at all."""
    folder.mkdir(parents=True)
    inotify = open_inotify(folder)
    if inotify is None:
        raise SystemExit("no inotify here: the wake floor needs Linux")
    process = producer_process(folder, count, gap)
    poller = select.poll()
    poller.register(inotify, select.POLLIN)
    fd, pending, found = -1, b"", []
    while len(found) < count:
        poller.poll(5000)
        os.read(inotify, 1 << 16)
        if fd < 0:
            try:
                fd = os.open(folder / "wake.jsonl", os.O_RDONLY)
            except FileNotFoundError:
                continue
        pending += os.read(fd, 1 << 20)
        *complete, pending = pending.split(b"\n")
        now = time.monotonic_ns()
        found += [(now - int(line)) / 1e6 for line in complete]
    process.wait()
    os.close(fd)
    os.close(inotify)
    return found


def latencies_bus(folder: Path, count: int, gap: float, **options: object) -> list[float]:
    bus = FileBus(folder, **options)  # type: ignore[arg-type]
    consumer = bus.consumer(["wake"], "g")
    process = producer_process(folder, count, gap)
    found = []
    while len(found) < count:
        message = consumer.receive(5.0)
        if message is None:
            raise SystemExit("the producer process stopped sending")
        found.append((time.monotonic_ns() - int(message.body)) / 1e6)
        consumer.ack(message)
    process.wait()
    consumer.close()
    return found


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=20)
    return statistics.median(values), cuts[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000, help="messages per case")
    parser.add_argument("--size", type=int, default=200, help="bytes per message")
    parser.add_argument("--wakes", type=int, default=200, help="cross-process messages")
    parser.add_argument("--gap", type=float, default=0.005, help="seconds between them")
    args = parser.parse_args()
    lines = [f"{n:08d} {'x' * (args.size - 9)}" for n in range(args.messages)]
    with tempfile.TemporaryDirectory() as tmp:
        rates = throughput(Path(tmp), lines)
        costs = ack_costs(Path(tmp), min(args.messages, 20_000))
        wakes = {
            "floor: bare inotify + poll reader": latencies_bare(
                Path(tmp) / "w0", args.wakes, args.gap
            ),
            "FileBus (inotify)": latencies_bus(Path(tmp) / "w1", args.wakes, args.gap),
            "FileBus (polling every 0.05 s)": latencies_bus(
                Path(tmp) / "w2", args.wakes, args.gap, notify=False
            ),
        }

    print(f"file bus in one process: {args.messages} messages of {args.size} bytes")
    print(f"{'case':<44}{'msgs/s':>12}{'vs floor':>10}")
    write_floor, read_floor = rates["floor: os.write per line"], rates["floor: read + split lines"]
    floors = {
        "FileBus send": write_floor,
        "FileBus receive": read_floor,
        "FileBus receive + ack": read_floor,
        "FileBus send + receive + ack": 1 / (1 / write_floor + 1 / read_floor),
    }
    for case, value in rates.items():
        ratio = f"{floors[case] / value:>9.1f}x" if case in floors else ""
        print(f"{case:<44}{value:>12.0f}{ratio:>10}")
    print("(send vs os.write, receive vs read, both vs the two floors in turn)")
    print()
    print(f"{'ack cost':<44}{'us/msg':>12}{'vs floor':>10}")
    floor = costs["floor: os.pwrite of one 64-byte slot"]
    for case, value in costs.items():
        ratio = "" if case.startswith("floor") else f"{value / floor:>9.1f}x"
        print(f"{case:<44}{value:>12.2f}{ratio:>10}")
    print()
    print(f"cross-process wake: {args.wakes} messages {args.gap * 1000:.0f} ms apart")
    print(f"{'case':<44}{'p50 ms':>12}{'p95 ms':>10}{'p50 vs floor':>14}")
    floor_p50 = percentiles(wakes["floor: bare inotify + poll reader"])[0]
    for case, values in wakes.items():
        p50, p95 = percentiles(values)
        ratio = "" if case.startswith("floor") else f"{p50 / floor_p50:>13.1f}x"
        print(f"{case:<44}{p50:>12.3f}{p95:>10.3f}{ratio:>14}")


if __name__ == "__main__":
    main()
