"""Taskmaster benchmark: done tasks resolved per second, and the scheduler's cost at 10k crons.

Run: python bench/taskmaster_bench.py [--done 10000] [--files 100]
Baseline in the same run: the memory bus alone (send + receive + ack) and Task JSON round trips,
so the ratio shows what resolving adds on a noisy machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cache import SQLiteCache
from flowlord.bus import MemoryBus
from flowlord.state import MemoryTaskStore, SQLiteTaskStore
from flowlord.taskmaster import Taskmaster
from workflow import Result, Task
from workflow.schedule import CronTable, cron_jobs

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PHASES_PER_FILE = 10


def workflow_text(number: int, *, crons: bool) -> str:
    """A 10-phase file: a root and a chain of children; `crons` makes every phase a cron job."""
    parts = []
    for step in range(PHASES_PER_FILE):
        rule = f"cron={step} {number % 24} * * *" if crons or step == 0 else "retry_delay=1m"
        parent = "" if crons or step == 0 else f'dependsOn = "s{step - 1}:j{number}"\n'
        parts.append(
            f'[[Phase]]\ntask = "s{step}:j{number}"\n{parent}rule = "{rule}"\n'
            f'template = "?day={{yyyy}}-{{mm}}-{{dd}}&f={number}&s={step}"\n'
        )
    return "\n".join(parts)


def build(folder: Path, files: int, *, crons: bool) -> None:
    for number in range(files):
        path = folder / f"wf{number:04d}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(workflow_text(number, crons=crons))


def done_tasks(files: int, count: int) -> list[str]:
    return [
        Task(
            type=f"s{n % (PHASES_PER_FILE - 1)}", job=f"j{n % files}", info="?day=2026-11-21",
            meta=f"workflow=wf{n % files:04d}.toml", id=f"run-{n}", result=Result.COMPLETE,
        ).to_json()
        for n in range(count)
    ]  # fmt: skip


def resolver_rate(files: int, count: int) -> tuple[float, float, float, int]:
    """Done tasks resolved per second by the taskmaster with the memory store and with the
    SQLite store (synchronous=FULL), beside the bus alone; and the children sent."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wf"
        build(folder, files, crons=False)
        cache = SQLiteCache(folder, Path(tmp) / "cache.db", now=lambda: START)
        cache.refresh()
        bodies = done_tasks(files, count)

        bus = MemoryBus()
        producer, consumer = bus.producer(), bus.consumer(["done"], "bench")
        for body in bodies:
            producer.send("done", body)
        start = time.perf_counter()
        while (message := consumer.receive(0)) is not None:
            Task.from_json(message.body).to_json()
            producer.send("out", message.body)
            consumer.ack(message)
        baseline = count / (time.perf_counter() - start)

        rates, sent = [], 0
        for store in (MemoryTaskStore(now=lambda: START),
                      SQLiteTaskStore(Path(tmp) / "cache.db", now=lambda: START)):  # fmt: skip
            bus = MemoryBus()
            producer = bus.producer()
            for body in bodies:
                producer.send("done", body)
            ids = iter(range(10**9))
            taskmaster = Taskmaster(
                cache, store, producer, lambda b=bus: b.consumer(["done", "files"], "taskmaster"),
                table=CronTable(), now=lambda: START, new_id=lambda i=ids: str(next(i)), holder="b",
            )  # fmt: skip
            taskmaster.lead()
            start = time.perf_counter()
            while taskmaster.step():
                pass
            rates.append(count / (time.perf_counter() - start))
            sent = taskmaster.counters.sent
            store.close()
        cache.close()
    return rates[0], rates[1], baseline, sent


def scheduler_cost(files: int) -> tuple[float, int, float, int]:
    """Heap build time for `files` x 10 cron phases, and CPU for one simulated idle minute."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wf"
        build(folder, files, crons=True)
        cache = SQLiteCache(folder, Path(tmp) / "cache.db", now=lambda: START)
        cache.refresh()
        phases_by_file: dict[str, list] = {}
        for phase in cache.phases():
            phases_by_file.setdefault(phase.file_path, []).append(phase)
        cache.close()
    table = CronTable()
    start = time.perf_counter()
    for key, phases in phases_by_file.items():
        table.set_file(key, cron_jobs(phases)[0], START)
    build_ms = (time.perf_counter() - start) * 1000
    # A quiet minute (no job due): the loop wakes every 0.2 s and asks the heap.
    quiet = START.replace(hour=12, minute=30)
    table.due(quiet)
    cpu = time.process_time()
    for tick in range(300):
        now = quiet + timedelta(seconds=tick * 0.2)
        table.due(now)
        table.next_wakeup()
    idle_ms = (time.process_time() - cpu) * 1000
    return build_ms, len(table), idle_ms, 300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--done", type=int, default=10_000, help="done tasks to resolve")
    parser.add_argument("--files", type=int, default=100, help="workflow files (10 phases each)")
    parser.add_argument("--cron-files", type=int, default=1000, help="files of 10 cron phases")
    args = parser.parse_args()
    memory, durable, baseline, sent = resolver_rate(args.files, args.done)
    print(
        f"resolver: {args.done} done tasks over {args.files * PHASES_PER_FILE} phases, memory bus"
    )
    print(f"{'case':<44}{'tasks/s':>10}")
    print(f"{'baseline: bus + Task JSON round trip':<44}{baseline:>10.0f}")
    print(f"{'taskmaster, memory store':<44}{memory:>10.0f}")
    print(f"{'taskmaster, SQLite store (synchronous=FULL)':<44}{durable:>10.0f}")
    print(f"{'children sent':<44}{sent:>10}")
    print(f"{'ratio baseline/taskmaster (SQLite)':<44}{baseline / durable:>10.1f}x")
    print()
    build_ms, jobs, idle_ms, wakes = scheduler_cost(args.cron_files)
    print(f"scheduler: {jobs} cron jobs")
    print(f"{'build the heap (parse crons, first fires)':<44}{build_ms:>8.0f} ms")
    print(f"{'CPU for an idle minute (' + str(wakes) + ' wake-ups)':<44}{idle_ms:>8.1f} ms")


if __name__ == "__main__":
    main()
