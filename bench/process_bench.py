"""Whole-process benchmark: `flowlord run` as a real process on the file bus, beside floors.

Run: python bench/process_bench.py [--repo PATH] [--files 1000,10000] [--quick] [--only NAME]
The machine is shared and noisy, so each figure is printed beside a floor measured in the same
run; "x floor time" is flowlord's time over the floor's (for rates: floor rate / flowlord's).
- hop: a done line appended to bus/done.jsonl -> its child's line in bus/child.jsonl, p50/p95;
  floor: the same hop through a minimal relay process (`--relay`) that copies lines on inotify.
- rate: N done lines appended at once -> N child lines; floors: the relay, and raw appends.
  These done messages answer no task flowlord sent (a worker starting chains).
- answers: the same, for done messages that answer N tasks flowlord sent (found by record).
- save: os.replace of a rewritten workflow -> `scheduled <key>` in the log; floors: raw inotify
  and raw watchfiles (debounce 1, step 1) seeing the same save.
- startup: spawn -> the `running` log line, cold (empty database) then warm (restart on it);
  floor: spawn -> `import flowlord.cli` done, plus a stat of every workflow file.
Linux only: the bench wakes on inotify (ctypes), the same way for flowlord and floors. Only flags
every version has are used and log lines are matched loosely, so `--repo` may be older or newer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import watchfiles
from inotify import IN_MODIFY, IN_MOVED_TO, Inotify

APPEND = os.O_APPEND | os.O_CREAT | os.O_WRONLY
TIMEOUT = 10.0
WARMUP = 5
RUNNING = re.compile(r"\brunning\b", re.IGNORECASE)
HOP_KEY = "hop.toml"
HOP_WORKFLOW = """
[[Phase]]
task = "parent"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "child"
dependsOn = "parent"
template = "?day={yyyy}-{mm}-{dd}"
"""


class Tail:
    """Counts the lines other processes append to a file, reading on each inotify wake."""

    def __init__(self, path: Path) -> None:
        path.touch()
        self.path = path
        self.lines = 0
        self._file = path.open("rb")
        self._notify = Inotify(path, IN_MODIFY)

    def wait_lines(self, total: int, timeout: float) -> float:
        """The perf_counter time at which the file was seen holding `total` lines."""
        deadline = time.monotonic() + timeout
        while True:
            self.lines += self._file.read().count(b"\n")
            if self.lines >= total:
                return time.perf_counter()
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._notify.events(remaining):
                raise TimeoutError(f"{self.path}: {self.lines} of {total} lines")

    def close(self) -> None:
        self._notify.close()
        self._file.close()


class Feed:
    """Lines from another thread, stamped on arrival, so a wait never delays the stamp."""

    def __init__(self) -> None:
        self._lines: list[tuple[float, str]] = []
        self._ended = False
        self._cond = threading.Condition()

    def add(self, line: str) -> None:
        stamp = time.perf_counter()
        with self._cond:
            self._lines.append((stamp, line))
            self._cond.notify_all()

    def follow(self, stream: IO[bytes]) -> None:
        """Add each line of `stream` until it ends (the process exited)."""
        for raw in stream:
            self.add(raw.decode(errors="replace").rstrip())
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self._lines)

    def wait(self, pattern: re.Pattern[str], since: int, timeout: float) -> float:
        """The stamp of the first line after `since` that matches; fails fast if the feed ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for stamp, line in self._lines[since:]:
                    if pattern.search(line):
                        return stamp
                since = len(self._lines)
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    tail = "\n  ".join(line for _, line in self._lines[-5:])
                    raise RuntimeError(f"no line matching {pattern.pattern!r}; last:\n  {tail}")
                self._cond.wait(remaining)


@dataclass
class Report:
    """Rows of the table, and how each flowlord process answered SIGTERM."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    stops: list[tuple[str, int | None, float]] = field(default_factory=list)

    def row(self, figure: str, value: str, floor: str, ratio: float) -> None:
        self.rows.append((figure, value, floor, f"{ratio:.1f}x"))


@dataclass
class Run:
    """A running `flowlord run`; `log` is its stderr."""

    process: subprocess.Popen[bytes]
    log: Feed
    started: float

    def ready(self, timeout: float) -> float:
        """Seconds from spawn to the log line announcing that it runs."""
        return self.log.wait(RUNNING, 0, timeout) - self.started

    def stop(self, name: str, report: Report) -> None:
        """SIGTERM, then record the exit code (None: alive after 10 s) and how long it took."""
        start = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        report.stops.append((name, code, time.perf_counter() - start))


def child_env(repo: Path) -> dict[str, str]:
    """The repo's code first on the path; no FLOWLORD_* setting leaks in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    return {**env, "PYTHONPATH": str(repo)}


@contextlib.contextmanager
def spawned(
    args: list[str], *, cwd: Path, env: dict[str, str], log: Feed | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (stderr into `log`, stdout a pipe) that is killed and reaped on exit."""
    process = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if log else subprocess.DEVNULL,
    )  # fmt: skip
    reader = threading.Thread(target=log.follow, args=(process.stderr,)) if log else None
    try:
        if reader:
            reader.start()
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if reader:
            reader.join(5)
        for pipe in (process.stdout, process.stderr):
            if pipe:
                pipe.close()


@contextlib.contextmanager
def flowlord_run(repo: Path, home: Path) -> Iterator[Run]:
    """`flowlord run` on `home`/wf with its database and file bus in `home`."""
    args = [sys.executable, "-m", "flowlord", "run", "--workflows", str(home / "wf"),
            "--db", str(home / "flowlord.db"), "--bus-dir", str(home / "bus")]  # fmt: skip
    log, started = Feed(), time.perf_counter()
    with spawned(args, cwd=home, env=child_env(repo), log=log) as process:
        yield Run(process, log, started)


@contextlib.contextmanager
def relay_hop(home: Path) -> Iterator[tuple[Path, Tail]]:
    """The floor: lines appended to `done.jsonl` reach `out.jsonl` through `run_relay`."""
    home.mkdir()
    done, out = home / "done.jsonl", home / "out.jsonl"
    args = [sys.executable, str(Path(__file__).resolve()), "--relay", str(done), str(out)]
    with (
        contextlib.closing(Tail(out)) as tail,
        spawned(args, cwd=home, env=dict(os.environ)) as process,
    ):
        if process.stdout is None or process.stdout.readline() != b"ready\n":
            raise RuntimeError("the relay process did not start")
        yield done, tail


@contextlib.contextmanager
def flowlord_hop(home: Path, repo: Path, report: Report) -> Iterator[tuple[Path, Tail]]:
    """Done lines appended to `bus/done.jsonl` start children in `bus/child.jsonl`."""
    make_home(home, {HOP_KEY: HOP_WORKFLOW})
    with (
        contextlib.closing(Tail(home / "bus/child.jsonl")) as tail,
        flowlord_run(repo, home) as run,
    ):
        run.ready(60)
        yield home / "bus/done.jsonl", tail
        run.stop(home.name, report)


def run_relay(source: Path, target: Path) -> None:
    """Append each complete line of `source` to `target`, waking on inotify; runs until killed."""
    source.touch()
    out, notify, pending = os.open(target, APPEND, 0o644), Inotify(source, IN_MODIFY), b""
    with source.open("rb") as file:
        print("ready", flush=True)
        while True:
            *lines, pending = (pending + file.read()).split(b"\n")
            for line in lines:
                os.write(out, line + b"\n")
            notify.events(None)


def done_line(task_id: str) -> bytes:
    """A complete done task of the hop workflow's parent, as `workflow.Task.to_json` writes it."""
    task = {"type": "parent", "info": "?day=2026-11-21", "meta": f"workflow={HOP_KEY}",
            "id": task_id, "created": "2026-11-21T12:00:00Z", "result": "complete"}  # fmt: skip
    return json.dumps(task, separators=(",", ":")).encode() + b"\n"


def chain_text(number: int, *, minute: int = 0) -> str:
    """bench/taskmaster_bench.py's file: a cron root and a chain of 9 children (Jan 1 only,
    so nothing fires during a run)."""
    parts = []
    for step in range(10):
        link = f'rule = "cron={minute} {number % 24} 1 1 *"\n' if step == 0 else (
            f'dependsOn = "s{step - 1}:j{number}"\nrule = "retry_delay=1m"\n')  # fmt: skip
        parts.append(f'[[Phase]]\ntask = "s{step}:j{number}"\n{link}'
                     f'template = "?day={{yyyy}}-{{mm}}-{{dd}}&f={number}&s={step}"\n')  # fmt: skip
    return "\n".join(parts)


def make_home(home: Path, files: dict[str, str]) -> None:
    for key, text in files.items():
        (home / "wf" / key).parent.mkdir(parents=True, exist_ok=True)
        (home / "wf" / key).write_text(text)
    (home / "bus").mkdir(exist_ok=True)


def hop_latencies(done: Path, tail: Tail, task_ids: list[str], rng: random.Random) -> list[float]:
    """Milliseconds from one appended done line to one more line downstream.

    Appends are 10-210 ms apart at random: a window 200 ms wide samples every phase of a 50 ms
    or 200 ms poll evenly, where a narrower one would favour the phases just after a wake.
    """
    fd, result = os.open(done, APPEND, 0o644), []
    try:
        for task_id in task_ids:
            line = done_line(task_id)
            start = time.perf_counter()
            os.write(fd, line)
            result.append((tail.wait_lines(tail.lines + 1, TIMEOUT) - start) * 1000)
            time.sleep(rng.uniform(0.01, 0.21))
    finally:
        os.close(fd)
    return result


def append_each(path: Path, lines: list[bytes]) -> float:
    """One os.write per line, as a file bus producer sends; returns when the first began."""
    fd = os.open(path, APPEND, 0o644)
    try:
        start = time.perf_counter()
        for line in lines:
            os.write(fd, line)
        return start
    finally:
        os.close(fd)


def flood_rate(done: Path, tail: Tail, task_ids: list[str]) -> float:
    """Lines/s from the first of `task_ids` appended at once to the last one seen downstream."""
    count = len(task_ids)
    total = tail.lines + count
    start = append_each(done, [done_line(task_id) for task_id in task_ids])
    return count / (tail.wait_lines(total, 60 + count / 100) - start)


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


def quantiles(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), statistics.quantiles(values, n=20)[-1]


def ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.0f} ms"


def hop_figure(repo: Path, count: int, report: Report) -> None:
    rng, results = random.Random(7), []
    with tempfile.TemporaryDirectory() as tmp:
        for hop in (relay_hop(Path(tmp, "relay")), flowlord_hop(Path(tmp, "hop"), repo, report)):
            with hop as (done, tail):
                hop_latencies(done, tail, ids("warm", WARMUP), rng)
                results.append(hop_latencies(done, tail, ids("hop", count), rng))
        children = Path(tmp, "hop/bus/child.jsonl").read_text().splitlines()
        missing = set(ids("hop", count)) - {json.loads(line)["id"] for line in children}
    if missing:
        raise RuntimeError(f"{len(missing)} child task(s) never sent, e.g. {min(missing)}")
    floor, values = results
    for name, ours, base in zip(("p50", "p95"), quantiles(values), quantiles(floor), strict=True):
        report.row(f"done → child {name} ({count} hops)", ms(ours), f"relay hop {ms(base)}",
                   ours / base)  # fmt: skip


def rate_figure(repo: Path, count: int, report: Report) -> None:
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for hop in (relay_hop(Path(tmp, "relay")), flowlord_hop(Path(tmp, "rate"), repo, report)):
            with hop as (done, tail):
                hop_latencies(done, tail, ids("warm", WARMUP), random.Random(7))
                time.sleep(0.5)  # idle before the flood
                rates.append(flood_rate(done, tail, ids("flood", count)))
        start = append_each(Path(tmp, "raw.jsonl"), [done_line(n) for n in ids("raw", count)])
        raw = count / (time.perf_counter() - start)
    relayed, ours = rates
    figure = f"done/s, {count:,} appended at once"
    report.row(figure, f"{ours:,.0f}/s", f"relay process {relayed:,.0f}/s", relayed / ours)
    report.row(figure, f"{ours:,.0f}/s", f"raw append {raw:,.0f}/s", raw / ours)


ANSWER_WORKFLOW = """
[[Phase]]
task = "parent"
rule = "files=/in/*.csv"
template = "{meta:file}"

[[Phase]]
task = "child"
dependsOn = "parent"
template = "?day=2026-11-21"
"""


def answers_figure(repo: Path, count: int, report: Report) -> None:
    """done/s when the done messages answer tasks flowlord itself sent (the common case: with
    task state, each finds its record), beside the relay. File messages make flowlord send
    `count` parent tasks first; their answers are then appended at once, and timed until
    every child is out."""
    with tempfile.TemporaryDirectory() as tmp:
        with relay_hop(Path(tmp, "relay")) as (done, tail):
            time.sleep(0.5)  # idle before the flood
            relayed = flood_rate(done, tail, ids("flood", count))
        home = Path(tmp, "answers")
        make_home(home, {"answers.toml": ANSWER_WORKFLOW})
        with (
            contextlib.closing(Tail(home / "bus/parent.jsonl")) as parents,
            contextlib.closing(Tail(home / "bus/child.jsonl")) as children,
            flowlord_run(repo, home) as run,
        ):
            run.ready(60)
            files = [json.dumps({"path": f"/in/{n}.csv"}).encode() + b"\n" for n in range(count)]
            append_each(home / "bus/files.jsonl", files)
            parents.wait_lines(count, 60 + count / 100)
            sent = (home / "bus/parent.jsonl").read_text().splitlines()
            answers = [
                json.dumps({**json.loads(line), "result": "complete"}).encode() + b"\n"
                for line in sent
            ]
            start = append_each(home / "bus/done.jsonl", answers)
            ours = count / (children.wait_lines(count, 60 + count / 100) - start)
            run.stop(home.name, report)
    figure = f"done/s, {count:,} answers to tasks it sent"
    report.row(figure, f"{ours:,.0f}/s", f"relay process {relayed:,.0f}/s", relayed / ours)


def follow_inotify(notify: Inotify, feed: Feed, stop: threading.Event) -> None:
    while not stop.is_set():
        for name in notify.events(0.1):
            feed.add(name)


def follow_watchfiles(folder: Path, feed: Feed, stop: threading.Event) -> None:
    for changes in watchfiles.watch(folder, debounce=1, step=1, stop_event=stop):
        for _, path in changes:
            feed.add(os.path.basename(path))


def save_latencies(run: Run, folder: Path, saves: int, rng: random.Random) -> list[list[float]]:
    """Per save, ms until flowlord logs the reschedule, raw inotify and raw watchfiles see it."""
    key, stop, (notified, watched) = "wf0000.toml", threading.Event(), (Feed(), Feed())
    name = re.compile(rf"^{re.escape(key)}$")
    feeds = [(run.log, re.compile(rf"scheduled {re.escape(key)}[: ]")), (notified, name),
             (watched, name)]  # fmt: skip
    notify = Inotify(folder, IN_MOVED_TO)
    threads = [
        threading.Thread(target=follow_inotify, args=(notify, notified, stop)),
        threading.Thread(target=follow_watchfiles, args=(folder, watched, stop)),
    ]
    result: list[list[float]] = [[], [], []]
    try:
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # watchfiles sets up its watch in its own thread
        for version in range(1, WARMUP + saves + 1):
            marks = [feed.mark() for feed, _ in feeds]
            temp = folder / f".{key}.tmp"
            temp.write_text(chain_text(0, minute=version % 60))
            start = time.perf_counter()
            os.replace(temp, folder / key)
            stamps = [feed.wait(p, m, TIMEOUT) for (feed, p), m in zip(feeds, marks, strict=True)]
            if version > WARMUP:
                for values, stamp in zip(result, stamps, strict=True):
                    values.append((stamp - start) * 1000)
            time.sleep(rng.uniform(0.1, 0.3))
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
        notify.close()
    return result


def save_figure(repo: Path, saves: int, report: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        make_home(home, {f"wf{n:04d}.toml": chain_text(n) for n in range(100)})
        with flowlord_run(repo, home) as run:
            run.ready(60)
            ours, inotify, watched = save_latencies(run, home / "wf", saves, random.Random(7))
            run.stop("save", report)
    for floor, values in (("raw inotify", inotify), ("raw watchfiles(1, 1)", watched)):
        pairs = zip(("p50", "p95"), quantiles(ours), quantiles(values), strict=True)
        for name, value, base in pairs:
            report.row(f"save → scheduled {name} ({saves} saves, 100 files)", ms(value),
                       f"{floor} {ms(base)}", value / base)  # fmt: skip


def scan_seconds(folder: Path) -> float:
    """Stat every file under `folder`: the least a start-up must do to notice changes."""
    start, folders = time.perf_counter(), [folder]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir():
                    folders.append(Path(entry.path))
                else:
                    os.stat(entry.path)
    return time.perf_counter() - start


def import_seconds(repo: Path, cwd: Path) -> float:
    """Spawn to a line printed after `import flowlord.cli`, timed as `Run.ready` is (the
    interpreter's exit is not part of a start-up)."""
    code = "import flowlord.cli; print('imported', flush=True)"
    start = time.perf_counter()
    with spawned([sys.executable, "-c", code], cwd=cwd, env=child_env(repo)) as process:
        if process.stdout is None or not process.stdout.readline():
            raise RuntimeError(f"python -c {code!r} failed")
        seconds = time.perf_counter() - start
        process.wait()
    return seconds


def startup_figure(repo: Path, counts: list[int], report: Report) -> None:
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            make_home(home, {f"wf{n:05d}.toml": chain_text(n) for n in range(count)})
            scan = statistics.median(scan_seconds(home / "wf") for _ in range(3))
            start = statistics.median(import_seconds(repo, home) for _ in range(3))
            floor = f"python + import {start:.2f} s + stat scan {ms(scan * 1000)}"
            for state in ("cold", "warm"):  # warm: a restart on the database cold left
                with flowlord_run(repo, home) as run:
                    seconds = run.ready(60 + count / 20)
                    run.stop(f"start-up {count:,} {state}", report)
                report.row(f"start-up, {count:,} files, {state}", f"{seconds:.2f} s", floor,
                           seconds / (start + scan))  # fmt: skip


def imported_from(repo: Path) -> str:
    """The file `flowlord.cli` loads from under `child_env(repo)`; refuses any other checkout."""
    command = [sys.executable, "-c", "import flowlord.cli as c; print(c.__file__)"]
    out = subprocess.run(command, cwd=tempfile.gettempdir(), env=child_env(repo), check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    if not Path(out).resolve().is_relative_to(repo.resolve()):
        raise SystemExit(f"flowlord.cli loads from {out}, not from {repo}")
    return out


def print_report(report: Report) -> None:
    header = ("figure", "flowlord", "floor (same run)", "x floor time")
    widths = [max(len(row[i]) for row in [header, *report.rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *report.rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    bad = [f"{n}: exit {c} after {s:.1f} s" for n, c, s in report.stops if c != 0 or s > 2]
    slowest = max((s for _, _, s in report.stops), default=0.0)
    print()
    fine = f"every run exited 0, slowest in {slowest:.2f} s"
    print("SIGTERM: " + ("; ".join(bad) if bad else fine))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="flowlord checkout whose code runs (default: this one)")  # fmt: skip
    parser.add_argument("--files", help="start-up folder sizes (default 1000,10000)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--only", choices=("hop", "rate", "answers", "save", "startup"))
    parser.add_argument("--relay", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        run_relay(*args.relay)
        return
    files = args.files or ("100,1000" if args.quick else "1000,10000")
    hops, done, saves = (20, 1000, 5) if args.quick else (200, 20_000, 30)
    print(f"flowlord run from {imported_from(args.repo)}; {os.cpu_count()} cores")
    print()
    report = Report()
    figures = {
        "hop": lambda: hop_figure(args.repo, hops, report),
        "rate": lambda: rate_figure(args.repo, done, report),
        "answers": lambda: answers_figure(args.repo, done, report),
        "save": lambda: save_figure(args.repo, saves, report),
        "startup": lambda: startup_figure(args.repo, [int(n) for n in files.split(",")], report),
    }
    for name, figure in figures.items():
        if args.only in (None, name):
            figure()
    print_report(report)


if __name__ == "__main__":
    main()
