"""Cache benchmark: lookups on SQLiteCache next to MemoryCache, and refresh costs.

Run: python bench/cache_bench.py [--sizes 100,1000,10000] [--files 1000]
Prints medians; compare within one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apsw
import tomli

from cache import MemoryCache, SQLiteCache
from workflow import Task

PHASES_PER_FILE = 10
BATCH = 200
OLD = 1_600_000_000


def workflow_text(number: int) -> str:
    """A realistic 10-phase file: a cron root and a chain of jobs, topics shared across files."""
    lines = [
        "[[Phase]]",
        'task = "extract"',
        f'rule = "cron=0 {number % 24} * * *&offset=-1h"',
        f'template = "s3://raw/{number}/{{yyyy}}/{{mm}}/{{dd}}/"',
    ]
    for step in range(1, PHASES_PER_FILE):
        parent = "extract" if step == 1 else f"step{step - 1}:job{number}"
        lines += [
            "",
            "[[Phase]]",
            f'task = "step{step}:job{number}"',
            f'dependsOn = "{parent}"',
            'rule = "retry_delay=5m"',
            "retry = 3",
            f'template = "?day={{yyyy}}-{{mm}}-{{dd}}&file={number}&step={step}"',
        ]
    return "\n".join(lines) + "\n"


def build(root: Path, files: int) -> None:
    for number in range(files):
        path = root / f"team{number % 10}" / f"wf{number:05d}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(workflow_text(number))
        os.utime(path, (OLD, OLD))


def per_call_us(call: Callable[[object], object], inputs: list, rounds: int = 15) -> float:
    """Median over rounds of the mean per call of a batch: steadier than timing single calls.

    Inputs are built before timing, so only the lookup itself is measured.
    """
    samples = []
    for round_ in range(rounds):
        batch = inputs[round_ * BATCH % len(inputs) :][:BATCH] or inputs[:BATCH]
        start = time.perf_counter_ns()
        for item in batch:
            call(item)
        samples.append((time.perf_counter_ns() - start) / len(batch) / 1000)
    return statistics.median(samples)


def lookups(files: int) -> list[tuple[str, float, float]]:
    rng = random.Random(files)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "wf"
        build(root, files)
        sqlite = SQLiteCache(root, Path(tmp) / "cache.db")
        memory = MemoryCache(root)
        sqlite.refresh()
        memory.refresh()
        numbers = [rng.randrange(files) for _ in range(BATCH * 15)]
        keyed = [
            Task(type="step5", job=f"job{n}", meta=f"workflow=team{n % 10}/wf{n:05d}.toml")
            for n in numbers
        ]
        parents = [
            Task(type="step4", job=f"job{n}", meta=f"workflow=team{n % 10}/wf{n:05d}.toml")
            for n in numbers
        ]
        starred = [Task(type="step5", meta=f"workflow=*&job=job{n}") for n in numbers]
        jobs = [f"job{n}" for n in numbers]
        cases = {
            "get (workflow=key, job)": (lambda c: c.get, keyed),
            "get (workflow=*, job)": (lambda c: c.get, starred),
            "children (topic:job)": (lambda c: c.children, parents),
            "search (topic, job)": (lambda c: lambda job: c.search("step3", job), jobs),
        }
        rows = [
            (name, per_call_us(method(sqlite), inputs), per_call_us(method(memory), inputs))
            for name, (method, inputs) in cases.items()
        ]
        sqlite.close()
        raw = apsw.Connection(str(Path(tmp) / "cache.db"))
        point = "SELECT * FROM workflow_phases WHERE file_path = ? AND task = ?"
        keys = [(f"team{n % 10}/wf{n:05d}.toml", f"step5:job{n}") for n in numbers]
        floor = per_call_us(lambda key: raw.execute(point, key).fetchall(), keys)
        raw.close()
        return [*rows, ("baseline: raw apsw point lookup", floor, 0.0)]


def refreshes(files: int, repeat: int = 5) -> list[tuple[str, float, float]]:
    """Milliseconds (median of `repeat`) for cold, warm and one-changed refreshes."""
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "wf"
        build(root, files)
        for run in range(repeat):
            for kind in ("sqlite", "memory"):
                db = Path(tmp) / f"cache-{run}.db"
                cache = SQLiteCache(root, db) if kind == "sqlite" else MemoryCache(root)
                timings = results.setdefault(kind, {})
                timings.setdefault("cold (all new)", []).append(_ms(cache.refresh))
                timings.setdefault("warm (nothing changed)", []).append(_ms(cache.refresh))
                target = root / "team3" / "wf00003.toml"
                target.write_text(workflow_text(3).replace("offset=-1h", f"offset=-{run + 2}h"))
                timings.setdefault("one file changed", []).append(_ms(cache.refresh))
                target.write_text(workflow_text(3).replace("offset=-1h", f"offset=-{run + 9}h"))
                timings.setdefault("one file, refresh_files", []).append(
                    _ms(lambda c=cache: c.refresh_files(["team3/wf00003.toml"]))
                )
                os.utime(target, (OLD, OLD))
                if kind == "sqlite":  # a restart: a new process would open the same file
                    reopened = SQLiteCache(root, db)
                    cache.close()
                    timings.setdefault("restart, nothing changed", []).append(_ms(reopened.refresh))
                    reopened.close()
                else:
                    cache.close()
        texts = [path.read_text() for path in sorted(root.rglob("*.toml"))]
        floor = [_ms(lambda: [tomli.loads(text) for text in texts]) for _ in range(repeat)]
        results["sqlite"]["baseline: tomli.loads only"] = floor
    memory = results["memory"]
    return [
        (
            name,
            statistics.median(values),
            statistics.median(memory[name]) if name in memory else 0.0,
        )
        for name, values in results["sqlite"].items()
    ]


def _ms(call: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000", help="total phases, comma-separated")
    parser.add_argument("--files", type=int, default=1000, help="files for the refresh table")
    args = parser.parse_args()
    print(f"lookups: median µs per call ({PHASES_PER_FILE} phases per file, batches of {BATCH})")
    print(
        f"{'phases':>7}  {'lookup':<26}{'SQLiteCache':>12}{'MemoryCache':>13}{'memory/sqlite':>15}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        for name, sqlite_us, memory_us in lookups(size // PHASES_PER_FILE):
            if not memory_us:
                print(f"{size:>7}  {name:<32}{sqlite_us:>6.1f}")
                continue
            ratio = memory_us / sqlite_us
            print(f"{size:>7}  {name:<26}{sqlite_us:>12.1f}{memory_us:>13.1f}{ratio:>14.1f}x")
    print()
    print(f"refresh: median ms over 5 runs, {args.files} files x {PHASES_PER_FILE} phases")
    print(f"{'case':<28}{'SQLiteCache':>12}{'MemoryCache':>13}")
    for name, sqlite_ms, memory_ms in refreshes(args.files):
        memory_text = f"{memory_ms:>13.2f}" if memory_ms else f"{'-':>13}"
        print(f"{name:<28}{sqlite_ms:>12.2f}{memory_text}")


if __name__ == "__main__":
    main()
