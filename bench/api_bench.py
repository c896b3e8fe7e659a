"""API benchmark: request latency of a real `flowlord run` process at 10,000 phases and
100,000 task records, beside floors measured in the same run.

Run: python bench/api_bench.py [--files 1000] [--records 100000] [--requests 200]
- Each route is asked `--requests` times over one kept-alive connection; p50 and p95.
- Floors: `/healthz` through the same server (HTTP and framework alone), and the same read
  called in process on the same database (`cache.phases()`, `store.tasks()`): what the query
  costs without HTTP and JSON.
The machine is shared and noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cache import SQLiteCache
from flowlord.state import NewRecord, SQLiteTaskStore, TaskFilter
from workflow import Task
from workflow.state import Origin, State

REPO = Path(__file__).resolve().parent.parent
PHASES_PER_FILE = 10
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def chain(number: int) -> str:
    """A file of a cron phase and a chain of nine children."""
    lines = [f'[[Phase]]\ntask = "s{number}-0"\nrule = "cron=0 {number % 24} * * *"\n'
             'template = "?day={yyyy}-{mm}-{dd}"\n']  # fmt: skip
    lines += [
        f'[[Phase]]\ntask = "s{number}-{step}"\ndependsOn = "s{number}-{step - 1}"\n'
        'template = "?day={yyyy}-{mm}-{dd}"\n'
        for step in range(1, PHASES_PER_FILE)
    ]
    return "\n".join(lines)


def make_workflows(folder: Path, files: int) -> None:
    folder.mkdir()
    for number in range(files):
        (folder / f"wf{number:05d}.toml").write_text(chain(number))


def make_records(db: Path, count: int) -> None:
    """`count` finished records, 1,000 per transaction, spread over 100 types."""
    store = SQLiteTaskStore(db, now=lambda: NOW, synchronous="NORMAL")
    try:
        for start in range(0, count, 1000):
            news = [
                NewRecord(
                    task=Task(
                        type=f"s{n % 100}-1",
                        info=f"?day=2026-11-21&n={n}",
                        id=f"run{n}",
                        meta=f"workflow=wf{n % 100:05d}.toml",
                    ),
                    workflow=f"wf{n % 100:05d}.toml",
                    phase=f"s{n % 100}-1",
                    origin=Origin.CHILD,
                    origin_key=f"bench|{n}",
                    state=State.QUEUED,
                )
                for n in range(start, min(start + 1000, count))
            ]
            with store.transaction() as tx:
                for made in tx.add(news, actor="bench", reason="fill"):
                    if made is not None:
                        tx.move(made.rec, State.COMPLETE, actor="bench", reason="fill",
                                current=made)  # fmt: skip
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def flowlord_run(home: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    args = [sys.executable, "-m", "flowlord", "run", "--workflows", str(home / "wf"),
            "--db", str(home / "flowlord.db"), "--bus-dir", str(home / "bus"),
            "--port", str(port), "--log-level", "warning"]  # fmt: skip
    with open(home / "run.log", "wb") as log:
        process = subprocess.Popen(args, cwd=home, env={**env, "PYTHONPATH": str(REPO)},
                                   stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"flowlord run exited with {process.returncode}")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        time.sleep(0.1)  # bounded wait for another process to listen
    raise RuntimeError("flowlord run was not ready in time")


def timed_gets(port: int, path: str, count: int) -> tuple[list[float], int]:
    """Latencies in ms over one kept-alive connection, and the size of the last body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies, size = [], 0
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        latencies.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        size = len(body)
    connection.close()
    return latencies, size


def timed_calls(call: Callable[[], object], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def quantiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return statistics.median(values), cuts[18]


@contextlib.contextmanager
def serving(files: int, records: int) -> Iterator[tuple[Path, int]]:
    """A `flowlord run` answering on a free port over `files` workflow files and `records`
    task records, in a temporary folder: the folder and the port."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        make_workflows(home / "wf", files)
        started = time.perf_counter()
        make_records(home / "flowlord.db", records)
        print(f"{records:,} records made in {time.perf_counter() - started:.1f} s")
        port = free_port()
        with flowlord_run(home, port) as process:
            wait_ready(port, process, 120)
            yield home, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="files of 10 phases each")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args()
    with serving(options.files, options.records) as (home, port):
        cache = SQLiteCache(home / "wf", home / "flowlord.db")
        store = SQLiteTaskStore(home / "flowlord.db", now=lambda: NOW)
        newest = store.tasks(TaskFilter(limit=1))[0].rec
        cursor = newest - options.records // 2
        in_process = {
            "/api/phases": lambda: cache.phases(),
            "/api/phases?file=wf00042.toml": lambda: cache.phases("wf00042.toml"),
            "/api/tasks": lambda: store.tasks(TaskFilter()),
            f"/api/tasks?cursor={cursor}": lambda: store.tasks(TaskFilter(before=cursor)),
            "/api/tasks?type=s7-1&limit=1000": lambda: store.tasks(
                TaskFilter(type="s7-1", limit=1000)
            ),
        }
        routes = ["/healthz", *in_process]
        rows = []
        floor, _ = timed_gets(port, "/healthz", options.requests)
        floor_p50 = quantiles(floor)[0]
        for route in routes:
            latencies, size = timed_gets(port, route, options.requests)
            p50, p95 = quantiles(latencies)
            local = in_process.get(route)
            query = quantiles(timed_calls(local, options.requests))[0] if local else None
            rows.append((route, p50, p95, size, query, p50 / floor_p50))
        store.close()
        cache.close()
    phases = options.files * PHASES_PER_FILE
    print(f"\n{phases:,} phases, {options.records:,} task records; {options.requests} requests "
          "per route over one connection\n")  # fmt: skip
    header = ("route", "p50 ms", "p95 ms", "body", "in-process p50", "x /healthz")
    print(f"{header[0]:<36}{header[1]:>9}{header[2]:>9}{header[3]:>12}{header[4]:>16}"
          f"{header[5]:>12}")  # fmt: skip
    for route, p50, p95, size, query, ratio in rows:
        local = f"{query:.2f} ms" if query is not None else "(floor)"
        print(f"{route:<36}{p50:>9.2f}{p95:>9.2f}{size:>12,}{local:>16}{ratio:>12.1f}")


if __name__ == "__main__":
    main()
