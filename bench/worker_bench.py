"""Worker round trips: a real `flowlord run` and a real worker process, on the file bus and on
Redis, beside huey and RQ running the same 2-step chain in the same run (issue 12, point 5).

Run: .venv/bin/python bench/worker_bench.py [--chains 200] [--hops 100] [--rounds 3]
     [--only ROW ...] [--exec-concurrency 1] [--quick] [--repo PATH]
Rows: file-nop, file-exec, redis-nop, redis-exec, redis-always-nop, redis-always-exec, huey,
rq, rq-simple. Each row gets fresh processes (and, for Redis, a fresh server) in its own folder
under one temp folder; a row whose parts are missing here is skipped with the reason.
- flowlord rows: `flowlord run` (own database, `--port 0`, a workflow folder holding one chain,
  `start` -> `a` -> `b`) and one worker process reading topics `a` and `b`: `flowlord worker
  nop`, or `flowlord worker exec -- true` (a process per task, `--exec-concurrency` at once).
  The bench plays the external worker of `start`: it sends a done `start` (result `complete`,
  meta `workflow=chain.toml`) to the done topic; flowlord records it and sends `a`; the worker
  completes `a`; flowlord sends `b`; the worker completes `b`. The bench watches the topics
  itself and stamps each message when it reads it: inotify on the bus folder (`done.jsonl`,
  `a.jsonl`, `b.jsonl`) for the file bus; `XREAD BLOCK` on the streams `flowlord:done`,
  `flowlord:a`, `flowlord:b` from its own connection, no consumer group, for Redis.
- chains/s: `--chains` chains started at once (one append each, or one pipeline of XADDs),
  from the first start to the last done of `b` seen; the median of `--rounds` bursts, with the
  lowest and highest. CPU ms per chain: each process's user + system time over the bursts.
- step p50/p95: `--hops` chains one at a time, (start -> done of `b` seen) / 2: the figure the
  peers give per step. Chains are paced 5-25 ms apart at random (pacing, not a wait), so a
  poll interval (huey's) is sampled at every phase.
- done -> child p50/p95: in those chains, the worker's done of `a` seen on the done topic ->
  task `b` seen on topic `b`: what flowlord adds per step. A second table splits each chain
  into its four sightings and names the slowest chain's worst part.
- Redis: a redis-server of the bench's own (a free port, `--save ""`, AOF on). The main rows
  use `appendfsync everysec`, Redis's default for AOF and what RQ deployments commonly run: a
  write is normally in the kernel before the client is answered and on disk within a second,
  so a machine crash can lose about the last second (two at worst). `redis-always` rows use
  `appendfsync always` (an fsync before answering each event-loop batch): the durability of
  flowlord's own database (SQLite, `synchronous=FULL`), at its price.
- Peers, when installed (else "huey not installed: skipped", ...). huey: a pipeline
  `huey_a.s(id).then(huey_b)` on SqliteHuey with `fsync=True`, one `huey_consumer` process
  with 1 worker thread polling every 1 ms (`-d 0.001 -m 0.001`; huey polls SQLite, and its
  default backoff up to 10 s would only make it slower). RQ: the bench's redis-server
  (everysec), one `rq worker` process, job `b` enqueued with `depends_on` job `a`; row `rq` is
  the default forking `Worker` (a work horse forked per job: it runs here), `rq-simple` the
  `SimpleWorker` (jobs in the worker process), the faster one, so the stricter peer. A peer's
  last step appends the chain id to a file the bench tails with inotify
  (bench/worker_bench_peers.py holds the task functions: both sides import them by name).
- Floors, timed in the bench process in the same run: spawning `true` (what an exec task
  costs at least) and a small append + fsync (what a durable commit costs at least).
- Goals (issue 12): Redis chains/s >= RQ's; the file bus within 2x of huey (step p50 <= 2x
  huey's, chains/s >= half huey's). Printed as met / not met; nothing is asserted.
The machine is shared and noisy: compare ratios within one run, not absolute figures.
Processes are waited for by their log lines (`running as leader`, `reading`, "Ready to accept
connections", ...) and messages by inotify or XREAD BLOCK, each with a deadline. Every process
runs in its own process group and is stopped at the end of its row (SIGTERM, then SIGKILL to
the group), also on Ctrl-C, SIGTERM or an error. Files go only under the temp folder.
Linux only (inotify through ctypes, pidfd).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import itertools
import json
import os
import random
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from inotify import IN_MODIFY, Inotify

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
CODE = [REPO]  # the checkout whose flowlord runs (--repo)
APPEND = os.O_APPEND | os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
HOP_TIMEOUT = 10.0
START_TIMEOUT = 60.0
WORKFLOW_KEY = "chain.toml"
WORKFLOW = """
# Never fires (1 January only): the bench sends the done of `start` itself.
[[Phase]]
task = "start"
rule = "cron=0 0 1 1 *"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "a"
dependsOn = "start"
template = "?day={yyyy}-{mm}-{dd}"

[[Phase]]
task = "b"
dependsOn = "a"
template = "?day={yyyy}-{mm}-{dd}"
"""
TOPICS = ("done", "a", "b")
LEADER = re.compile(r"running as leader")
REDIS_READY = re.compile(r"Ready to accept connections")
HUEY_READY = re.compile(r"consumer started|started with", re.IGNORECASE)
RQ_READY = re.compile(r"Listening on", re.IGNORECASE)
WORKER_READY = re.compile(r"\breading\b")  # "nop worker reading a, b from ..." (warm-up proves it)

Key = tuple[str, str, str]  # (topic, task type, chain id)


# --- waking on events ---------------------------------------------------------------------


class Source(Protocol):
    def poll(self, timeout: float) -> list[tuple[float, str, bytes]]:
        """(stamp, topic, body) of what arrived, waiting up to `timeout` if nothing had."""

    def close(self) -> None: ...


class FileTopics:
    """Lines other processes append to files of one folder, stamped when read. The files are
    created empty first (as a producer would create them), so every append is seen."""

    def __init__(self, folder: Path, names: dict[str, str]) -> None:
        self._files: dict[str, IO[bytes]] = {}
        self._pending: dict[str, bytes] = {}
        for topic, name in names.items():
            (folder / name).touch()
            self._files[topic] = (folder / name).open("rb")
            self._pending[topic] = b""
        self._notify = Inotify(folder, IN_MODIFY)

    def _read(self) -> list[tuple[float, str, bytes]]:
        found = []
        for topic, file in self._files.items():
            data = file.read()
            if data:
                stamp = time.perf_counter()
                *lines, self._pending[topic] = (self._pending[topic] + data).split(b"\n")
                found += [(stamp, topic, line) for line in lines if line]
        return found

    def poll(self, timeout: float) -> list[tuple[float, str, bytes]]:
        found = self._read()
        if not found and self._notify.events(max(timeout, 0)):
            found = self._read()
        return found

    def close(self) -> None:
        self._notify.close()
        for file in self._files.values():
            file.close()


class StreamTopics:
    """Entries of Redis streams read with `XREAD BLOCK` from the start, without a group."""

    def __init__(self, client: Any, keys: dict[str, str]) -> None:
        self._client = client
        self._topic = {key: topic for topic, key in keys.items()}
        self._last = dict.fromkeys(keys.values(), "0-0")

    def poll(self, timeout: float) -> list[tuple[float, str, bytes]]:
        block = max(1, int(timeout * 1000))
        reply = self._client.xread(self._last, block=block, count=100_000)
        stamp, found = time.perf_counter(), []
        for key, entries in reply or []:
            key = key.decode() if isinstance(key, bytes) else key
            for entry_id, fields in entries:
                self._last[key] = entry_id
                found.append((stamp, self._topic[key], stream_body(fields)))
        return found

    def close(self) -> None:
        self._client.close()


def stream_body(fields: dict[bytes, bytes]) -> bytes:
    """The message of a stream entry: its `body` field (flowlord.bus.streams)."""
    return fields.get(b"body", b"")


class Seen:
    """First sighting of each (topic, type, id), from one `Source`; waits with a deadline."""

    def __init__(self, source: Source, *, parse: Callable[[str, bytes], Key]) -> None:
        self.source = source
        self.first: dict[Key, float] = {}
        self.repeats = 0
        self._parse = parse

    def pump(self, timeout: float) -> None:
        for stamp, topic, body in self.source.poll(timeout):
            key = self._parse(topic, body)
            if key in self.first:
                self.repeats += 1
            else:
                self.first[key] = stamp

    def wait(self, keys: Iterable[Key], timeout: float) -> list[float]:
        """The stamps of `keys`, once all have been seen."""
        wanted, deadline = list(keys), time.monotonic() + timeout
        while True:
            missing = [key for key in wanted if key not in self.first]
            if not missing:
                return [self.first[key] for key in wanted]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(missing)} of {len(wanted)} not seen, e.g. {missing[0]}")
            self.pump(remaining)


def task_key(topic: str, body: bytes) -> Key:
    try:
        task = json.loads(body)
        return topic, str(task.get("type", "")), str(task.get("id", ""))
    except (ValueError, AttributeError):
        return topic, "?", body.decode(errors="replace")


def line_key(topic: str, body: bytes) -> Key:
    return topic, "", body.decode().strip()


# --- processes ----------------------------------------------------------------------------


class Feed:
    """A process's output lines, collected by a reader thread."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._ended = False
        self._cond = threading.Condition()

    def follow(self, stream: IO[bytes]) -> None:
        for raw in stream:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait(self, pattern: re.Pattern[str], timeout: float, name: str) -> None:
        deadline, since = time.monotonic() + timeout, 0
        with self._cond:
            while True:
                if any(pattern.search(line) for line in self.lines[since:]):
                    return
                since = len(self.lines)
                remaining = deadline - time.monotonic()
                if self._ended or remaining <= 0:
                    raise RuntimeError(f"{name}: no line matching {pattern.pattern!r}; "
                                       f"last lines:\n  {self.tail()}")  # fmt: skip
                self._cond.wait(remaining)

    def tail(self, count: int = 8) -> str:
        return "\n  ".join(self.lines[-count:])


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Feed

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its reaped children (from /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def child_env(**extra: str) -> dict[str, str]:
    """The checkout's code (`--repo`) first on the path; no FLOWLORD_* setting leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWLORD_")}
    return {**env, "PYTHONPATH": str(CODE[0]), "PYTHONUNBUFFERED": "1", **extra}


def imported_from() -> str:
    """The file `flowlord.cli` loads from under `child_env()`; refuses any other checkout."""
    command = [sys.executable, "-c", "import flowlord.cli as c; print(c.__file__)"]
    done = subprocess.run(command, cwd=tempfile.gettempdir(), env=child_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    out = done.stdout.strip()
    if done.returncode != 0 or not Path(out).resolve().is_relative_to(CODE[0].resolve()):
        raise SystemExit(f"flowlord.cli does not load from {CODE[0]}: {out or done.stderr}")
    return out


def start(stack: contextlib.ExitStack, name: str, args: list[str], *, cwd: Path,
          env: dict[str, str]) -> Proc:  # fmt: skip
    """A process in its own group, output (stdout and stderr) into a `Feed`; on the stack's
    exit: SIGTERM to its group, SIGKILL after 5 s, reaped."""
    process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    log = Feed()
    reader = threading.Thread(target=log.follow, args=(process.stdout,), daemon=True)
    reader.start()
    proc = Proc(name, process, log)
    stack.callback(stop, proc, reader)
    return proc


def stop(proc: Proc, reader: threading.Thread) -> None:
    """SIGTERM to the process group, then SIGKILL to whatever is left in it (an exec worker's
    commands too). The leader is reaped last: until then its pid, the group's id, cannot be
    reused, so the SIGKILL reaches no stranger."""
    process = proc.process
    pidfd = os.pidfd_open(process.pid)
    try:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        if not select.select([pidfd], [], [], 5.0)[0]:
            print(f"  {proc.name}: still running 5 s after SIGTERM: killed", file=sys.stderr)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(pidfd)
        reader.join(5)
        if process.stdout:
            process.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server(stack: contextlib.ExitStack, home: Path, fsync: str) -> str:
    """A redis-server of the bench's own, AOF on with `appendfsync fsync`; its URL."""
    home.mkdir(parents=True, exist_ok=True)
    for _ in range(5):  # another process may take the free port first
        port = free_port()
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home),
                "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
                "--daemonize", "no", "--logfile", ""]  # fmt: skip
        proc = start(stack, f"redis-server ({fsync})", args, cwd=home, env=dict(os.environ))
        try:
            proc.log.wait(REDIS_READY, START_TIMEOUT, proc.name)
            return f"redis://127.0.0.1:{port}/0"
        except RuntimeError:
            if not any("in use" in line for line in proc.log.lines):
                raise
    raise RuntimeError("redis-server: no free port after 5 tries")


# --- what exists in this checkout, and what is installed -----------------------------------


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
        return False


def cli_help(*args: str) -> str:
    command = [sys.executable, "-m", "flowlord", *args, "--help"]
    done = subprocess.run(command, cwd=tempfile.gettempdir(), env=child_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return done.stdout if done.returncode == 0 else ""


def redis_bus_ready() -> str:
    """'' when flowlord can run on Redis here, else why not."""
    if not has_module("redis"):
        return "redis-py not installed"
    if not has_redis_server():
        return "redis-server not installed"
    code = "from flowlord.bus.streams import RedisBus"
    done = subprocess.run([sys.executable, "-c", code], cwd=tempfile.gettempdir(),
                          env=child_env(), capture_output=True, timeout=60)  # fmt: skip
    if done.returncode != 0:
        return "flowlord.bus.streams has no RedisBus yet"
    if "--redis-url" not in cli_help("run") or "--redis-url" not in cli_help("worker", "nop"):
        return "flowlord run/worker have no --redis-url yet"
    return ""


def has_redis_server() -> bool:
    return any(Path(d, "redis-server").exists() for d in os.get_exec_path())


def exec_worker_ready() -> str:
    if "--topic" not in cli_help("worker", "exec"):
        return "flowlord worker exec does not exist yet"
    return ""


# --- flowlord rows ------------------------------------------------------------------------


@dataclass
class Result:
    """One row's figures; times in ms."""

    name: str
    rates: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    hops: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per chain, per process
    repeats: int = 0


class Bus(Protocol):
    """How the bench sends done messages of `start` and watches the topics."""

    def send_starts(self, lines: list[bytes]) -> float: ...

    def seen(self) -> Seen: ...

    def flags(self) -> list[str]: ...


class FileBusSide:
    """The file bus in `folder`, written and read the way another program joins it (README,
    "The file bus")."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def flags(self) -> list[str]:
        return ["--bus", "file", "--bus-dir", str(self.folder)]

    def send_starts(self, lines: list[bytes]) -> float:
        """One `write` per line under LOCK_SH on done.lock, as flowlord's producer appends;
        returns the perf_counter time just before the first."""
        lock = os.open(self.folder / "done.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fd = os.open(self.folder / "done.jsonl", APPEND, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)
            begun = time.perf_counter()
            for line in lines:
                os.write(fd, line + b"\n")
            return begun
        finally:
            os.close(fd)
            os.close(lock)

    def seen(self) -> Seen:
        names = {topic: f"{topic}.jsonl" for topic in TOPICS}
        return Seen(FileTopics(self.folder, names), parse=task_key)


class RedisBusSide:
    """Redis Streams as flowlord.bus.streams lays them out: stream `flowlord:<topic>`, one
    field `body` per entry."""

    def __init__(self, url: str) -> None:
        import redis  # only Redis rows need it

        self.url = url
        self._redis = redis
        self._client = redis.Redis.from_url(url)

    def flags(self) -> list[str]:
        return ["--bus", "redis", "--redis-url", self.url]

    def send_starts(self, lines: list[bytes]) -> float:
        """XADD each to the done stream, all in one pipeline (one round trip)."""
        pipe = self._client.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(stream_key("done"), {"body": line})
        begun = time.perf_counter()
        pipe.execute()
        return begun

    def seen(self) -> Seen:
        keys = {topic: stream_key(topic) for topic in TOPICS}
        return Seen(StreamTopics(self._redis.Redis.from_url(self.url), keys), parse=task_key)

    def close(self) -> None:
        self._client.close()


def stream_key(topic: str) -> str:
    return f"flowlord:{topic}"


def start_line(chain_id: str) -> bytes:
    """A complete done task of phase `start`, as an external worker would send it."""
    task = {"type": "start", "info": "?day=2026-11-21", "meta": f"workflow={WORKFLOW_KEY}",
            "id": chain_id, "created": "2026-11-21T12:00:00Z", "started": "2026-11-21T12:00:00Z",
            "ended": "2026-11-21T12:00:00Z", "result": "complete"}  # fmt: skip
    return json.dumps(task, separators=(",", ":")).encode()


def worker_args(worker: str, bus_flags: list[str], concurrency: int) -> list[str]:
    """The row's worker process, reading `a` and `b`: `nop` (one task at a time, as the peers'
    single worker), or `exec` running `true` for each task, `concurrency` at once."""
    base = [sys.executable, "-m", "flowlord", "worker"]
    if worker == "nop":
        return [*base, "nop", "--topics", "a,b", *bus_flags]
    return [*base, "exec", "--topic", "a", "--topic", "b", "--concurrency", str(concurrency),
            *bus_flags, "--", "true"]  # fmt: skip


@dataclass
class Plan:
    chains: int
    hops: int
    rounds: int
    warmup: int
    exec_concurrency: int = 1


@dataclass
class Subject:
    """What one row runs: `start` starts chains by id (returning the perf_counter time just
    before the first), `seen` watches, `stages` are the sightings of one chain in order (the
    last one ends it), `procs` are the processes whose CPU is counted."""

    start: Callable[[list[str]], float]
    seen: Seen
    stages: dict[str, Callable[[str], Key]]
    procs: list[Proc]


def measure(name: str, subject: Subject, plan: Plan) -> Result:
    """Warm-up chains, `plan.rounds` bursts of `plan.chains`, then `plan.hops` chains one at
    a time; the same for every row."""
    result, seen = Result(name), subject.seen
    last = list(subject.stages.values())[-1]
    for chain_id in ids("warm", plan.warmup):  # first messages, imports, consumer groups
        subject.start([chain_id])
        seen.wait([last(chain_id)], START_TIMEOUT)
    for round_ in range(plan.rounds):
        before = [proc.cpu_seconds() for proc in subject.procs]
        chain_ids = ids(f"burst{round_}", plan.chains)
        begun = subject.start(chain_ids)
        ends = seen.wait([last(chain_id) for chain_id in chain_ids], 60 + plan.chains / 10)
        result.rates.append(plan.chains / (max(ends) - begun))
        for proc, cpu in zip(subject.procs, before, strict=True):
            spent = (proc.cpu_seconds() - cpu) * 1000 / plan.chains / plan.rounds
            result.cpu[proc.name] = result.cpu.get(proc.name, 0.0) + spent
    rng = random.Random(7)
    names = ["start", *subject.stages]
    if len(names) > 2:
        result.parts = {f"{n0} -> {n1}": [] for n0, n1 in itertools.pairwise(names)}
    for chain_id in ids("hop", plan.hops):
        time.sleep(rng.uniform(0.005, 0.025))  # pacing between chains, not a wait
        begun = subject.start([chain_id])
        stamps = seen.wait([key(chain_id) for key in subject.stages.values()], HOP_TIMEOUT)
        result.steps.append((stamps[-1] - begun) * 1000 / 2)
        for part, t0, t1 in zip(result.parts, [begun, *stamps], stamps, strict=False):
            result.parts[part].append((t1 - t0) * 1000)
    result.hops = result.parts.get("done a -> b", [])  # flowlord's own hop
    result.repeats = seen.repeats
    return result


def flowlord_row(name: str, bus_kind: str, fsync: str, worker: str, plan: Plan,
                 tmp: Path) -> Result:  # fmt: skip
    home = tmp / name
    (home / "wf").mkdir(parents=True)
    (home / "wf" / WORKFLOW_KEY).write_text(WORKFLOW)
    with contextlib.ExitStack() as stack:
        if bus_kind == "file":
            bus: Bus = FileBusSide(home / "bus")
        else:
            side = RedisBusSide(redis_server(stack, home / "redis", fsync))
            stack.callback(side.close)
            bus = side
        seen = bus.seen()
        stack.callback(seen.source.close)
        run_args = [sys.executable, "-m", "flowlord", "run", "--workflows", str(home / "wf"),
                    "--db", str(home / "flowlord.db"), "--port", "0", *bus.flags()]  # fmt: skip
        taskmaster = start(stack, "flowlord run", run_args, cwd=home, env=child_env())
        taskmaster.log.wait(LEADER, START_TIMEOUT, taskmaster.name)
        args = worker_args(worker, bus.flags(), plan.exec_concurrency)
        worker_proc = start(stack, f"worker {worker}", args, cwd=home, env=child_env())
        worker_proc.log.wait(WORKER_READY, START_TIMEOUT, worker_proc.name)
        subject = Subject(
            start=lambda chain_ids: bus.send_starts([start_line(c) for c in chain_ids]),
            seen=seen,
            stages={"a": lambda c: ("a", "a", c), "done a": lambda c: ("done", "a", c),
                    "b": lambda c: ("b", "b", c), "done b": lambda c: ("done", "b", c)},
            procs=[taskmaster, worker_proc],
        )  # fmt: skip
        try:
            return measure(name, subject, plan)
        except TimeoutError as err:  # say what the processes said last
            tails = "".join(f"\n{p.name}:\n  {p.log.tail()}" for p in subject.procs)
            raise RuntimeError(f"{err}{tails}") from err


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


# --- peers --------------------------------------------------------------------------------


def peer_env(home: Path, peer: str) -> dict[str, str]:
    return child_env(WORKER_BENCH_HOME=str(home), WORKER_BENCH_PEER=peer, PYTHONPATH=str(BENCH))


def peer_seen(home: Path) -> Seen:
    from worker_bench_peers import SIGNAL

    return Seen(FileTopics(home, {"peer": SIGNAL}), parse=line_key)


def peer_subject(enqueue: Callable[[str], None], seen: Seen, procs: list[Proc]) -> Subject:
    def start_chains(chain_ids: list[str]) -> float:
        begun = time.perf_counter()
        for chain_id in chain_ids:
            enqueue(chain_id)
        return begun

    return Subject(start_chains, seen, {"done b": lambda c: ("peer", "", c)}, procs)


def huey_row(plan: Plan, tmp: Path) -> Result:
    home = tmp / "huey"
    home.mkdir()
    os.environ["WORKER_BENCH_HOME"] = str(home)  # read by worker_bench_peers on import
    os.environ["WORKER_BENCH_PEER"] = "huey"
    sys.path.insert(0, str(BENCH))
    import worker_bench_peers as peers

    if peers.huey is None or Path(peers.HOME) != home:
        raise RuntimeError("worker_bench_peers was imported before its home was set")
    with contextlib.ExitStack() as stack:
        seen = peer_seen(home)
        stack.callback(seen.source.close)
        consumer = [sys.executable, "-m", "huey.bin.huey_consumer", "worker_bench_peers.huey",
                    "-w", "1", "-k", "thread", "-d", "0.001", "-m", "0.001", "-b", "1",
                    "-n", "-C"]  # fmt: skip
        proc = start(stack, "huey_consumer", consumer, cwd=home, env=peer_env(home, "huey"))
        proc.log.wait(HUEY_READY, START_TIMEOUT, proc.name)

        def enqueue(chain_id: str) -> None:
            peers.huey.enqueue(peers.huey_a.s(chain_id).then(peers.huey_b))

        result = measure("huey (SQLite, fsync)", peer_subject(enqueue, seen, [proc]), plan)
        peers.huey.storage.close()
    return result


def rq_row(plan: Plan, tmp: Path, worker_class: str) -> Result:
    """RQ with `worker_class` ('': the default forking `Worker`)."""
    import redis
    from rq import Queue

    name = "rq-simple" if worker_class else "rq"
    home = tmp / name
    home.mkdir()
    with contextlib.ExitStack() as stack:
        url = redis_server(stack, home / "redis", "everysec")
        seen = peer_seen(home)
        stack.callback(seen.source.close)
        worker = [sys.executable, "-m", "rq.cli", "worker", "--url", url, "default"]
        if worker_class:
            worker += ["--worker-class", worker_class]
        proc = start(stack, "rq worker", worker, cwd=home, env=peer_env(home, "rq"))
        proc.log.wait(RQ_READY, START_TIMEOUT, proc.name)
        client = redis.Redis.from_url(url)
        stack.callback(client.close)
        queue = Queue("default", connection=client)

        def enqueue(chain_id: str) -> None:
            first = queue.enqueue("worker_bench_peers.rq_a", chain_id)
            queue.enqueue("worker_bench_peers.rq_b", chain_id, depends_on=first)

        label = "SimpleWorker" if worker_class else "forking Worker"
        subject = peer_subject(enqueue, seen, [proc])
        result = measure(f"{name} (Redis everysec, {label})", subject, plan)
    return result


# --- the table ----------------------------------------------------------------------------


def quantiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    return statistics.median(values), statistics.quantiles(values, n=20)[-1]


def ms(value: float) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def rate(result: Result) -> float:
    return statistics.median(result.rates) if result.rates else float("nan")


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def ratio(ours: float, theirs: float | None) -> str:
    if theirs is None or ours != ours or theirs != theirs or theirs == 0:
        return "-"
    return f"{ours / theirs:.2f}x"


def floors(tmp: Path, count: int = 50) -> str:
    """What an exec task and a durable commit cost at least here, timed in this process."""
    spawns, syncs = [], []
    fd = os.open(tmp / "fsync.bin", APPEND, 0o644)
    try:
        for _ in range(count):
            begun = time.perf_counter()
            subprocess.run(["true"], check=True)
            spawns.append((time.perf_counter() - begun) * 1000)
            begun = time.perf_counter()
            os.write(fd, b"x" * 100)
            os.fsync(fd)
            syncs.append((time.perf_counter() - begun) * 1000)
    finally:
        os.close(fd)
    return (f"Floors (same run, in the bench process): `true` by subprocess.run p50 "
            f"{ms(statistics.median(spawns))} (an exec worker runs one per task); a 100-byte "
            f"append + fsync in the temp folder p50 {ms(statistics.median(syncs))}.")  # fmt: skip


def report(results: list[Result], floor: str) -> None:
    huey = next((r for r in results if r.name.startswith("huey")), None)
    rqs = [r for r in results if r.name.startswith("rq")]
    rq = max(rqs, key=rate, default=None)  # the faster RQ worker: the stricter peer
    header = ("row", "chains/s", "step p50", "step p95", "done→child p50", "done→child p95",
              "chains/s ÷ huey", "step ÷ huey", "chains/s ÷ RQ", "step ÷ RQ")  # fmt: skip
    rows = [header]
    for result in results:
        step50, step95 = quantiles(result.steps)
        hop50, hop95 = quantiles(result.hops)
        low, high = min(result.rates), max(result.rates)
        spread = f" ({low:,.0f}-{high:,.0f})" if len(result.rates) > 1 else ""
        figures = (f"{rate(result):,.0f}{spread}", ms(step50), ms(step95), ms(hop50), ms(hop95))
        rows.append((result.name, *figures, *against(result, huey), *against(result, rq)))
    table(rows)
    print("chains/s: median of the bursts (lowest-highest); ÷ RQ: against " +
          (rq.name if rq else "no RQ row") + ", the faster RQ row")  # fmt: skip
    print(floor)
    print()
    ours = [r for r in results if r.parts]
    if ours:
        print("Where a sequential chain's time goes (p50 of each part; bench-stamped sightings):")
        parts = list(ours[0].parts)
        table([("row", *parts, "slowest chain", "CPU ms per chain in the bursts")] + [
            (r.name, *(ms(quantiles(r.parts[p])[0]) for p in parts), slowest(r), cpu(r))
            for r in ours
        ])  # fmt: skip
        peers = [r for r in results if not r.parts]
        if peers:
            print("Peers' CPU ms per chain in the bursts: " +
                  "; ".join(f"{r.name}: {cpu(r)}" for r in peers))  # fmt: skip
        print()
    repeats = [f"{r.name}: {r.repeats}" for r in results if r.repeats]
    if repeats:
        print("Messages seen twice (at-least-once redeliveries): " + ", ".join(repeats))
        print()
    goals(ours, huey, rqs)


def against(result: Result, peer: Result | None) -> tuple[str, str]:
    """chains/s and step p50 of `result` over `peer`'s."""
    if peer is None:
        return "-", "-"
    return (ratio(rate(result), rate(peer)),
            ratio(quantiles(result.steps)[0], quantiles(peer.steps)[0]))  # fmt: skip


def slowest(result: Result) -> str:
    """The slowest sequential chain's step, and the part where most of its time went."""
    worst = max(range(len(result.steps)), key=result.steps.__getitem__)
    part = max(result.parts, key=lambda name: result.parts[name][worst])
    return f"step {ms(result.steps[worst])}: {part} {ms(result.parts[part][worst])}"


def cpu(result: Result) -> str:
    return ", ".join(f"{name} {spent:.2f}" for name, spent in result.cpu.items())


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def goals(ours: list[Result], huey: Result | None, rqs: list[Result]) -> None:
    """Issue 12's goals, as text: Redis rows against each RQ row, file rows against huey."""
    print("Goals (issue 12; measured, never asserted):")
    if not ours:
        print("- no flowlord row in this run")
    for result in ours:
        checks, note = [], ""
        if result.name.startswith("redis"):
            for rq in rqs:
                met = rate(result) >= rate(rq)
                checks.append(f"chains/s {rate(result):,.0f} >= {rq.name.split()[0]}'s "
                              f"{rate(rq):,.0f}: {verdict(met)}")  # fmt: skip
            note = " (appendfsync always; RQ's server: everysec)" if "always" in result.name else ""
            checks = checks or ["chains/s >= RQ's: no RQ row to compare"]
        elif result.name.startswith("file"):
            if huey is None:
                checks.append("within 2x of huey: no huey row to compare")
            else:
                step, theirs = quantiles(result.steps)[0], quantiles(huey.steps)[0]
                checks.append(f"step p50 {ms(step)} <= 2 x huey's {ms(theirs)}: "
                              f"{verdict(step <= 2 * theirs)}")  # fmt: skip
                checks.append(f"chains/s {rate(result):,.0f} >= huey's {rate(huey):,.0f} / 2: "
                              f"{verdict(rate(result) >= rate(huey) / 2)}")  # fmt: skip
        if result.name.endswith("exec"):
            note += " (a process per task; the peers call a function)"
        print(f"- {result.name}: " + "; ".join(checks) + note)


# --- main ---------------------------------------------------------------------------------

FLOWLORD_ROWS = {  # name: (bus, appendfsync, worker)
    "file-nop": ("file", "", "nop"),
    "file-exec": ("file", "", "exec"),
    "redis-nop": ("redis", "everysec", "nop"),
    "redis-exec": ("redis", "everysec", "exec"),
    "redis-always-nop": ("redis", "always", "nop"),
    "redis-always-exec": ("redis", "always", "exec"),
}
PEER_ROWS = ("huey", "rq", "rq-simple")
# Each peer runs next to the rows measured against it, so that a change in the machine's
# load between rows skews a ratio less; the table keeps FLOWLORD_ROWS, then PEER_ROWS order.
RUN_ORDER = ("huey", "file-nop", "file-exec", "rq", "rq-simple", "redis-nop", "redis-exec",
             "redis-always-nop", "redis-always-exec")  # fmt: skip


def raise_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="flowlord checkout whose code runs (default: this one)")  # fmt: skip
    parser.add_argument("--chains", type=int, help="chains started at once (default 200)")
    parser.add_argument("--hops", type=int, help="sequential chains (default 100)")
    parser.add_argument("--rounds", type=int, help="bursts per row, median (default 3)")
    parser.add_argument("--only", choices=[*FLOWLORD_ROWS, *PEER_ROWS], action="append",
                        metavar="ROW", help="only this row (repeatable): %(choices)s")  # fmt: skip
    parser.add_argument("--exec-concurrency", type=int, default=1, metavar="N",
                        help="commands the exec worker runs at once (default 1)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    args = parser.parse_args()
    plan = Plan(chains=args.chains or (20 if args.quick else 200),
                hops=args.hops or (10 if args.quick else 100),
                rounds=args.rounds or (1 if args.quick else 3),
                warmup=2 if args.quick else 5, exec_concurrency=args.exec_concurrency)  # fmt: skip
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    CODE[0] = args.repo
    print(f"flowlord from {imported_from()}; {os.cpu_count()} cores; {plan.chains} chains at "
          f"once x {plan.rounds}, {plan.hops} sequential chains per row")  # fmt: skip
    rows = runnable(args.only or [*FLOWLORD_ROWS, *PEER_ROWS], plan)
    results: list[Result] = []
    failed: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as tmp:
        floor = floors(Path(tmp))
        for name, row in rows.items():
            print(f"running {name} ...", flush=True)
            began = time.perf_counter()
            try:
                results.append(row(Path(tmp)))
            except Exception as err:  # the other rows still run
                failed.append(name)
                print(f"  {name} failed (its processes are stopped): {err}", flush=True)
            print(f"  {time.perf_counter() - began:.0f} s", flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s for {len(results)} row(s); load average "
          f"{' '.join(f'{n:.2f}' for n in os.getloadavg())}\n")  # fmt: skip
    order = [*FLOWLORD_ROWS, *PEER_ROWS]
    results.sort(key=lambda result: order.index(result.name.split()[0]))
    if results:
        report(results, floor)
    if failed:
        print(f"\nRows that failed: {', '.join(failed)}")


def runnable(wanted: list[str], plan: Plan) -> dict[str, Callable[[Path], Result]]:
    """The rows asked for that can run here; says why each other one is skipped."""
    rows: dict[str, Callable[[Path], Result]] = {}
    asked = [FLOWLORD_ROWS[name] for name in wanted if name in FLOWLORD_ROWS]
    missing = {
        "redis": redis_bus_ready() if any(bus == "redis" for bus, _, _ in asked) else "",
        "exec": exec_worker_ready() if any(worker == "exec" for _, _, worker in asked) else "",
    }
    for name, (bus, fsync, worker) in FLOWLORD_ROWS.items():
        why = (missing["redis"] if bus == "redis" else "") or missing.get(worker, "")
        if name in wanted and why:
            print(f"{name}: {why}: skipped")
        elif name in wanted:
            rows[name] = lambda tmp, n=name, b=bus, f=fsync, w=worker: flowlord_row(
                n, b, f, w, plan, tmp)  # fmt: skip
    if "huey" in wanted:
        if has_module("huey"):
            rows["huey"] = lambda tmp: huey_row(plan, tmp)
        else:
            print("huey: huey not installed: skipped")
    for name, worker_class in (("rq", ""), ("rq-simple", "rq.worker.SimpleWorker")):
        if name not in wanted:
            continue
        absent = [label for module, label in (("rq", "rq"), ("redis", "redis-py"))
                  if not has_module(module)]  # fmt: skip
        if absent or not has_redis_server():
            print(f"{name}: {' and '.join(absent) or 'redis-server'} not installed: skipped")
        else:
            rows[name] = lambda tmp, c=worker_class: rq_row(plan, tmp, c)
    return {name: rows[name] for name in RUN_ORDER if name in rows}


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: every process the bench started was stopped", file=sys.stderr)
        sys.exit(130)
