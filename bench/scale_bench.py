"""Scale benchmark: files-rule matching at 10,000 globs, and the memory of a cold refresh.

Run: python bench/scale_bench.py [--rules 10000] [--files 10000] [--repo PATH]
`--repo` runs another checkout's code (its `FileRules` may live in `flowlord.files`, as before
the rules moved to `workflow.files`), so an older version can be measured in the same way.
Each figure is printed beside a floor measured in the same run (the machine is noisy):
- matching: ms per file message over N `files=` rules; floor: one compiled regex match per
  rule, which is what a matcher with no index does at best.
- cold refresh of N files: peak Python memory (tracemalloc); floor: the bytes of the files.
"""

from __future__ import annotations

import argparse
import importlib
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def load(repo: Path) -> tuple[type, type, type]:
    """`FileRules`, `PhaseRecord` and `SQLiteCache` of the checkout at `repo`."""
    sys.path.insert(0, str(repo))
    # By file, not by trying imports: an editable install would find a missing submodule in
    # the installed checkout instead.
    where = "workflow.files" if (repo / "workflow" / "files.py").exists() else "flowlord.files"
    rules = importlib.import_module(where).FileRules
    assert Path(importlib.import_module(where).__file__).is_relative_to(repo), where
    phase = importlib.import_module("workflow").PhaseRecord
    cache = importlib.import_module("cache").SQLiteCache
    return rules, phase, cache


def globs(count: int, *, wild_first: bool) -> list[str]:
    """Distinct globs, one per workflow file: under their own folder, or starting with `*`."""
    if wild_first:
        return [f"*/part-{n:05d}-*.csv" for n in range(count)]
    return [f"s3://bucket/wf{n:05d}/*/*.csv" for n in range(count)]


def match_ms(file_rules: type, phase: type, patterns: list[str], paths: list[str]) -> float:
    """Median ms to turn one file message into its tasks, over `paths`."""
    rules = file_rules()
    for number, glob in enumerate(patterns):
        key = f"wf{number:05d}.toml"
        rules.set_file(key, [phase(task="ingest", rule=f"files={glob}", file_path=key)])
    times = []
    for path in paths:
        body = f'{{"path": "{path}"}}'
        start = time.perf_counter()
        tasks, _ = rules.tasks(body, new_id=lambda: "id", now=NOW)
        times.append((time.perf_counter() - start) * 1000)
        assert len(tasks) == 1, (path, len(tasks))
    return statistics.median(times)


def floor_ms(patterns: list[str], paths: list[str]) -> float:
    """One precompiled regex match per rule: the least a matcher without an index does."""
    compiled = [re.compile(re.escape(p).replace(r"\*", "[^/]*") + r"\Z") for p in patterns]
    times = []
    for path in paths:
        start = time.perf_counter()
        found = [pattern for pattern in compiled if pattern.match(path)]
        times.append((time.perf_counter() - start) * 1000)
        assert len(found) == 1
    return statistics.median(times)


def matching(file_rules: type, phase: type, count: int) -> list[tuple[str, float, float]]:
    rows = []
    for wild_first in (False, True):
        patterns = globs(count, wild_first=wild_first)
        numbers = range(0, count, max(1, count // 50))
        if wild_first:
            paths = [f"landing/part-{n:05d}-0.csv" for n in numbers]
        else:
            paths = [f"s3://bucket/wf{n:05d}/2026-11-21/a.csv" for n in numbers]
        label = "globs starting with *" if wild_first else "globs under their own folder"
        rows.append(
            (label, match_ms(file_rules, phase, patterns, paths), floor_ms(patterns, paths))
        )
    return rows


def cold_refresh_peak(cache_class: type, files: int) -> tuple[float, float, float]:
    """Seconds of a cold refresh, the peak traced memory (MB) of another (tracing slows it
    down), and the files' size (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "wf"
        folder.mkdir()
        size = 0
        for number in range(files):
            text = "".join(
                f'[[Phase]]\ntask = "s{step}:j{number}"\n'
                + (f'rule = "cron=0 {number % 24} * * *"\n' if step == 0 else
                   f'dependsOn = "s{step - 1}:j{number}"\n')
                + f'template = "?day={{yyyy}}-{{mm}}-{{dd}}&f={number}&s={step}"\n\n'
                for step in range(10)
            )  # fmt: skip
            size += len(text)
            (folder / f"wf{number:05d}.toml").write_text(text)
        cache = cache_class(folder, Path(tmp) / "timed.db")
        start = time.perf_counter()
        cache.refresh()
        seconds = time.perf_counter() - start
        cache.close()
        cache = cache_class(folder, Path(tmp) / "traced.db")
        tracemalloc.start()
        cache.refresh()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        cache.close()
    return peak / 1e6, seconds, size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rules", type=int, default=10_000, help="files= rules to match")
    parser.add_argument("--files", type=int, default=10_000, help="files of a cold refresh")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    file_rules, phase, cache_class = load(args.repo.resolve())
    print(f"code from {args.repo.resolve()}")
    print(f"\nfiles-rule matching, {args.rules:,} rules, one file message")
    print(f"{'case':<32}{'ms/message':>12}{'floor ms':>10}{'x floor':>9}")
    for label, took, floor in matching(file_rules, phase, args.rules):
        print(f"{label:<32}{took:>12.3f}{floor:>10.3f}{took / floor:>9.2f}")
    peak, seconds, size = cold_refresh_peak(cache_class, args.files)
    print(f"\ncold refresh, {args.files:,} files x 10 phases")
    print(f"{'peak traced memory':<32}{peak:>10.1f} MB  (floor: the files, {size:.1f} MB; "
          f"{peak / size:.1f}x)")  # fmt: skip
    print(f"{'time (not traced)':<32}{seconds:>10.2f} s")


if __name__ == "__main__":
    main()
