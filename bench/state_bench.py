"""Task-state benchmark: the cost of resolving one done message, per store, beside floors.

A "done" is what the taskmaster does for one done message under group commit: in one
transaction per batch of 100, `find_attempt`, a move of the record to complete and the add
of one child; then, in the outbox's transaction per batch, the children marked sent
together. The children are the next batch's parents. Floors, measured in the
same run: a bare apsw INSERT + UPDATE per done in one transaction per 100 (FULL), and one
FULL commit alone. Then `purge` batches of 500 over old finished records.

Run: python bench/state_bench.py [--rounds 40] [--prefill 10000]
Prints medians; compare within one run (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import apsw

from flowlord.state import MemoryTaskStore, NewRecord, SQLiteTaskStore, TaskRecord, TaskStore
from workflow import Task
from workflow.state import Origin, State

BATCH = 100
FLOOR = "floor: bare INSERT+UPDATE, 100/commit"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PURGED = 20_000


def clock() -> datetime:
    return NOW


def record(key: str, run: str) -> NewRecord:
    info = f"?day=2026-11-21&key={key}"
    task = Task(type="step", job="j", info=info, id=run, meta="workflow=wf.toml&job=j")
    return NewRecord(
        task=task, workflow="wf.toml", phase="step:j", origin=Origin.CHILD, origin_key=key,
        state=State.QUEUED,
    )  # fmt: skip


def prefill(store: TaskStore, count: int, prefix: str = "old") -> None:
    """Finished history, so indexes have the depth of a store that has run for a while."""
    for start in range(0, count, 1000):
        keys = [f"{prefix}{i}" for i in range(start, start + 1000)]
        with store.transaction() as tx:
            made = tx.add([record(key, key[:-1]) for key in keys], actor="bench", reason="fill")
            for new in made:
                if new is not None:
                    tx.move(new.rec, State.COMPLETE, actor="bench", reason="prefill", current=new)


def sent_parents(store: TaskStore) -> list[TaskRecord]:
    with store.transaction() as tx:
        made = tx.add([record(f"p{i}", f"run{i}") for i in range(BATCH)], actor="b", reason="r")
        return [tx.move(new.rec, State.SENT, actor="b", reason="r") for new in made if new]


def one_round(store: TaskStore, parents: list[TaskRecord]) -> list[TaskRecord]:
    """Resolve a batch of dones (one transaction, as the taskmaster does: no savepoint per
    done), then mark their children sent in one batch (another transaction)."""
    children: list[TaskRecord] = []
    with store.transaction(leader="bench") as tx:
        for parent in parents:
            found = tx.find_attempt(parent.id, parent.type, parent.job, parent.info, 0)
            if found is None:
                raise RuntimeError(f"no record for {parent.origin_key}")
            tx.move(found.rec, State.COMPLETE, actor="done", reason="ok", result="complete",
                    current=found)  # fmt: skip
            child = record(f"child:{found.rec}:step:j", parent.id)
            children += [new for new in tx.add([child], actor="done", reason="child") if new]
    with store.transaction(leader="bench") as tx:
        tx.move_all(children, State.SENT, actor="outbox", reason="sent")
    return children


class Floor:
    """The floors: a bare INSERT + UPDATE per done, 100 per FULL commit; one FULL commit."""

    def __init__(self, path: Path) -> None:
        self.db = apsw.Connection(str(path))
        self.db.execute("PRAGMA journal_mode = WAL").fetchall()
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.execute(
            "CREATE TABLE t (rec INTEGER PRIMARY KEY, k TEXT UNIQUE, state TEXT, at TEXT)"
        )
        self.rounds = 0

    def batch(self) -> None:
        self.rounds += 1
        self.db.execute("BEGIN IMMEDIATE")
        for i in range(BATCH):
            self.db.execute(
                "INSERT INTO t (k, state, at) VALUES (?, 'queued', 'x')", (f"{self.rounds}/{i}",)
            )
            self.db.execute(
                "UPDATE t SET state = 'sent', at = 'y' WHERE rec = ?",
                (self.db.last_insert_rowid(),),
            )
        self.db.execute("COMMIT")

    def commit(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")  # a changed value: SQLite skips an unchanged row
        self.db.execute("UPDATE t SET at = ? WHERE rec = 1", (str(self.rounds),))
        self.db.execute("COMMIT")


def timed(step: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    step()
    return (time.perf_counter_ns() - start) / 1000


def compare(root: Path, rounds: int, fill: int) -> tuple[dict[str, float], float]:
    """µs per done of each store, and of the floor, taking turns round by round so that the
    noise of a shared machine falls on all alike; and µs of one FULL commit."""
    normal = SQLiteTaskStore(root / "normal.db", now=clock, synchronous="NORMAL")
    stores: dict[str, TaskStore] = {
        "sqlite, synchronous=FULL": SQLiteTaskStore(root / "full.db", now=clock),
        "sqlite, synchronous=NORMAL": normal,
        "memory": MemoryTaskStore(now=clock),
    }
    parents = {}
    for name, store in stores.items():
        prefill(store, fill)
        store.acquire("bench", ttl=3600)
        parents[name] = sent_parents(store)
    floor = Floor(root / "floor.db")
    samples: dict[str, list[float]] = {name: [] for name in [*stores, FLOOR]}
    commits = []
    for _ in range(rounds):
        for name, store in stores.items():
            start = time.perf_counter_ns()
            parents[name] = one_round(store, parents[name])
            samples[name].append((time.perf_counter_ns() - start) / BATCH / 1000)
        samples[FLOOR].append(timed(floor.batch) / BATCH)
        commits.append(timed(floor.commit))
    for store in stores.values():
        store.close()
    floor.db.close()
    return {name: statistics.median(s) for name, s in samples.items()}, statistics.median(commits)


def purge_batches(path: Path, count: int) -> list[float]:
    """Milliseconds per `purge(batch=500)` over `count` old finished records (3 rows each,
    with a record, its transitions), beside as many young ones that stay."""
    then = NOW - timedelta(days=100)
    store = SQLiteTaskStore(path, now=lambda: then)
    prefill(store, count)
    store.close()
    store = SQLiteTaskStore(path, now=clock)
    prefill(store, count, prefix="young")
    times = []
    while True:
        start = time.perf_counter_ns()
        deleted = store.purge(NOW - timedelta(days=90), batch=500)
        times.append((time.perf_counter_ns() - start) / 1e6)
        if not deleted:
            break
    store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--prefill", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        per_done, commit = compare(Path(tmp), args.rounds, args.prefill)
        purges = purge_batches(Path(tmp) / "purge.db", PURGED)
    print(
        "one done = find_attempt + move + add child, then the child marked sent in a batch; "
        f"batches of {BATCH}, {args.prefill} finished records before; medians of {args.rounds}"
    )
    print(f"{'store':<40} {'µs/done':>10} {'done/s':>10}")
    for name, micros in per_done.items():
        print(f"{name:<40} {micros:>10.1f} {1e6 / micros:>10,.0f}")
    print(f"{'floor: one FULL commit alone':<40} {commit:>10.1f} µs")
    batches = purges[:-1]
    print(
        f"purge(batch=500) of {PURGED:,} old records + {2 * PURGED:,} transitions beside "
        f"{PURGED:,} young: {len(batches)} batches, median {statistics.median(batches):.1f} ms, "
        f"max {max(batches):.1f} ms; the last call (nothing left) {purges[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
