"""The handler of `flowlord worker exec`: one command per task, in a process group of its own.

The command gets the task in `FLOWLORD_TASK` (its JSON) and its arguments with `{info}` and
`{meta:KEY}` filled (`workflow.command`); it inherits the worker's stdout, and the last 64 KiB
of its stderr are kept for the done message. Exit 0 → `complete`; anything else → `error`
with the tail of stderr: `exit N: …`, `killed by SIGNAME: …`, `timed out after D: killed: …`.

The command runs in a new session, so that a timeout or `cancel()` reaches every process it
started: a timeout sends SIGTERM to the group, then SIGKILL after `kill_after` seconds; when the
command itself has exited, whatever it left running in its group is killed (SIGKILL) before its
exit is reaped, while the group's id cannot yet name another group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
from datetime import timedelta
from typing import IO, cast

from flowlord.worker.outcome import Outcome, tail
from workflow.command import CommandError, CommandTemplate, MissingMeta
from workflow.duration import format_duration
from workflow.task import Result, Task

log = logging.getLogger("flowlord.worker")

KEEP_STDERR = 64 * 1024
"""Bytes of a command's stderr kept (the last ones)."""
MSG_STDERR = 2000
"""Characters of that tail in the done message."""
KILL_AFTER = 5.0
READ_REST = 2.0
"""Seconds to wait for the rest of stderr once the group is gone; a process that left the
group (`setsid`) may hold it open for ever."""


def check_program(template: CommandTemplate) -> None:
    """At start: CommandError unless the program (when it does not depend on the task) is one
    that can run, found on PATH or at the path given."""
    if not template.fixed_program:
        return
    program = template.program
    if shutil.which(program) is not None:
        return
    if os.sep in program:
        found = os.path.exists(program)
    else:
        path = os.environ.get("PATH", os.defpath)
        found = any(os.path.exists(os.path.join(d, program)) for d in path.split(os.pathsep))
    if found:
        raise CommandError(f"command {program!r} is not executable")
    where = "" if os.sep in program else f" (PATH={os.environ.get('PATH', os.defpath)})"
    raise CommandError(f"command {program!r} not found{where}")


class CommandHandler:
    """`handler(task) -> Outcome` running `template`; `cancel()` kills every running command."""

    def __init__(
        self,
        template: CommandTemplate,
        *,
        timeout: float | None = None,
        kill_after: float = KILL_AFTER,
    ) -> None:
        self._template = template
        self._timeout = timeout
        self._kill_after = kill_after
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._cancelled = False

    def __call__(self, task: Task) -> Outcome:
        try:
            argv = self._template.render(task)
        except MissingMeta as err:
            return Outcome(Result.ERROR, str(err))
        env = {**os.environ, "FLOWLORD_TASK": task.to_json()}
        with self._lock:
            if self._cancelled:
                return Outcome(Result.ERROR, "cancelled: the worker is stopping")
            try:
                process = subprocess.Popen(
                    argv, start_new_session=True, stdin=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, env=env,
                )  # fmt: skip
            except (OSError, ValueError) as err:
                why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                return Outcome(Result.ERROR, f"cannot run {argv[0]!r}: {why}")
            self._running.add(process)
        try:
            return self._wait(process)
        finally:
            with self._lock:
                self._running.discard(process)

    def cancel(self) -> None:
        """Kill every running command's group (SIGKILL), and run no more."""
        with self._lock:
            self._cancelled = True
            for process in self._running:
                _signal_group(process, signal.SIGKILL)

    def _wait(self, process: subprocess.Popen[bytes]) -> Outcome:
        stderr = _Tail(cast(IO[bytes], process.stderr))  # stderr=PIPE: never None
        expired, ended = threading.Event(), threading.Event()
        timer = None
        if self._timeout is not None:
            timer = threading.Timer(self._timeout, self._expire, (process, expired, ended))
            timer.daemon = True
            timer.start()
        _wait_unreaped(process)
        ended.set()
        if timer is not None:
            timer.cancel()
        _signal_group(process, signal.SIGKILL)  # what it left running
        code = process.wait()
        text = stderr.text(READ_REST)
        if expired.is_set():
            return Outcome(Result.ERROR, _joined(f"timed out after {self._shown()}: killed", text))
        if code == 0:
            return Outcome(Result.COMPLETE)
        if code < 0:
            return Outcome(Result.ERROR, _joined(f"killed by {_signal_name(-code)}", text))
        return Outcome(Result.ERROR, _joined(f"exit {code}", text))

    def _expire(
        self, process: subprocess.Popen[bytes], expired: threading.Event, ended: threading.Event
    ) -> None:
        """On the timer's thread: SIGTERM to the group, SIGKILL if it outlives `kill_after`."""
        expired.set()
        _signal_group(process, signal.SIGTERM)
        if not ended.wait(self._kill_after):
            _signal_group(process, signal.SIGKILL)

    def _shown(self) -> str:
        return format_duration(timedelta(seconds=self._timeout or 0))


class _Tail:
    """Reads a pipe to its end on a thread of its own, keeping only the last bytes."""

    def __init__(self, pipe: IO[bytes], keep: int = KEEP_STDERR) -> None:
        self._pipe = pipe
        self._keep = keep
        self._lock = threading.Lock()
        self._data = bytearray()
        self._thread = threading.Thread(target=self._read, name="flowlord-stderr", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fd = self._pipe.fileno()
        while chunk := os.read(fd, 65536):
            with self._lock:
                self._data += chunk
                if len(self._data) > 2 * self._keep:  # trimmed now and then, not per chunk
                    del self._data[: -self._keep]
        self._pipe.close()

    def text(self, wait: float) -> str:
        """The tail read so far, after waiting up to `wait` seconds for the end."""
        self._thread.join(wait)
        if self._thread.is_alive():
            log.warning("a command's stderr is still open after it ended: a process it "
                        "started left its group; msg has the stderr read so far")  # fmt: skip
        with self._lock:
            kept = bytes(self._data[-self._keep :])
        return tail(kept.decode("utf-8", errors="replace").strip(), MSG_STDERR)


def _wait_unreaped(process: subprocess.Popen[bytes]) -> None:
    """Wait for the leader to exit, without reaping it where the system allows: until it is
    reaped, its pid still names its group, so killing the group cannot reach another."""
    if not hasattr(os, "waitid"):  # macOS before Python 3.13
        process.wait()
        return
    with contextlib.suppress(ChildProcessError):  # reaped by someone else: wait() says 0
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)


def _joined(what: str, stderr: str) -> str:
    return f"{what}: {stderr}" if stderr else what


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
