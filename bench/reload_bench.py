"""Hot-reload benchmark: time from a save to `on_change` having run, against raw watchfiles.

Run: python bench/reload_bench.py [--saves 30] [--files 100]
Baseline: plain `watchfiles.watch` with the same debounce/step, timed in the same run, so the
ratio shows what flowlord adds (hashing, parsing, the SQLite write) on a noisy machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import watchfiles

from cache import SQLiteCache
from cache.watcher import WatchSettings

SETTINGS = WatchSettings()
TIMEOUT = 10.0


def text(version: int, prefix: str = "t") -> str:
    return "".join(
        f'[[Phase]]\ntask = "{prefix}{n}"\n'
        + ('rule = "cron=@daily"\n' if n == 0 else f'dependsOn = "{prefix}0"\n')
        + f'template = "?v={version}&n={n}"\n'
        for n in range(10)
    )


def save_in_place(path: Path, version: int) -> None:
    path.write_text(text(version))


def save_atomic(path: Path, version: int) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text(version))
    os.replace(temp, path)


class Arrivals:
    """Signals when a key arrives, with the time it did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[threading.Event, list[float]]] = {}

    def expect(self, keys: set[str]) -> tuple[threading.Event, list[float]]:
        done, when = threading.Event(), []
        with self._lock:
            for key in keys:
                self._waiting[key] = (done, when)
        return done, when

    def arrived(self, keys: list[str]) -> None:
        now = time.perf_counter()
        with self._lock:
            for key in keys:
                entry = self._waiting.pop(key, None)
                if entry and not any(e is entry[0] for e, _ in self._waiting.values()):
                    entry[1].append(now)
                    entry[0].set()


def latencies(arrivals: Arrivals, path: Path, key: str, save: Callable, saves: int) -> list[float]:
    result = []
    for version in range(saves):
        done, when = arrivals.expect({key})
        start = time.perf_counter()
        save(path, version + 1000 * len(result))
        if not done.wait(TIMEOUT):
            raise RuntimeError(f"save {version} of {key} never arrived")
        result.append((when[0] - start) * 1000)
        time.sleep(0.05)  # let the debounce window close, so saves are measured one by one
    return result


def raw_watchfiles(folder: Path, arrivals: Arrivals, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        for batch in watchfiles.watch(
            folder, debounce=SETTINGS.debounce_ms, step=SETTINGS.step_ms, stop_event=stop
        ):
            arrivals.arrived([os.path.relpath(p, folder) for _, p in batch])

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def build(folder: Path, files: int) -> None:
    for number in range(files):
        path = folder / f"team{number % 5}" / f"wf{number:04d}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(number))


def stats(values: list[float]) -> str:
    p95 = statistics.quantiles(values, n=20)[-1]
    return f"{statistics.median(values):>9.1f}{p95:>9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--files", type=int, default=100, help="workflow files in the folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wf"
        build(folder, args.files)
        target, key = folder / "team0" / "wf0000.toml", "team0/wf0000.toml"
        rows = []

        arrivals = Arrivals()
        stop = threading.Event()
        thread = raw_watchfiles(folder, arrivals, stop)
        time.sleep(0.3)  # let the raw watcher start before the first save
        for name, save in (("in place", save_in_place), ("atomic rename", save_atomic)):
            rows.append(
                (f"raw watchfiles, {name}", latencies(arrivals, target, key, save, args.saves))
            )
        stop.set()
        thread.join()

        cache = SQLiteCache(folder, Path(tmp) / "cache.db")
        cache.refresh()
        arrivals = Arrivals()
        cache.watch(arrivals.arrived, settings=SETTINGS)
        time.sleep(0.6)  # the first wake does the catch-up refresh
        for name, save in (("in place", save_in_place), ("atomic rename", save_atomic)):
            rows.append(
                (f"flowlord on_change, {name}", latencies(arrivals, target, key, save, args.saves))
            )

        burst_keys = {f"burst/f{n:03d}.toml" for n in range(200)}
        done, when = arrivals.expect(burst_keys)
        start = time.perf_counter()
        for burst_key in sorted(burst_keys):
            path = folder / burst_key
            path.parent.mkdir(exist_ok=True)
            path.write_text(text(7, prefix=f"b{burst_key[7:10]}_"))
        burst_ok = done.wait(TIMEOUT)
        burst_ms = (when[0] - start) * 1000 if burst_ok else float("nan")

        idle_start_cpu, idle_start = time.process_time(), time.perf_counter()
        time.sleep(5)
        idle = (time.process_time() - idle_start_cpu) / (time.perf_counter() - idle_start) * 100
        cache.close()

    print(
        f"save -> notified, ms over {args.saves} saves ({args.files} files watched, "
        f"debounce {SETTINGS.debounce_ms} ms, step {SETTINGS.step_ms} ms)"
    )
    print(f"{'case':<34}{'median':>9}{'p95':>9}")
    for name, values in rows:
        print(f"{name:<34}{stats(values)}")
    for name in ("in place", "atomic rename"):
        raw = statistics.median(dict(rows)[f"raw watchfiles, {name}"])
        ours = statistics.median(dict(rows)[f"flowlord on_change, {name}"])
        print(f"{'ratio flowlord/raw, ' + name:<34}{ours / raw:>9.2f}x")
    print()
    print(
        f"burst of 200 new files fully applied: {burst_ms:.0f} ms"
        + ("" if burst_ok else " (TIMED OUT)")
    )
    print(f"idle CPU with the watcher running: {idle:.2f} % of a core (5 s sample)")


if __name__ == "__main__":
    main()
