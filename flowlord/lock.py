"""One `flowlord run` per database: an OS file lock on `<db>.lock`, next to the database.

`fcntl.flock` is released by the OS when the process ends in any way, `kill -9` included, so
a stale lock file never blocks a restart. The holder writes who it is into the file, for the
message the next process shows. (A lease in the database replaces this when task state lands.)
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from workflow.task import rfc3339

MAX_HOLDER_BYTES = 4096


class DatabaseInUse(RuntimeError):
    """Another process holds the database; the message names it and the holder."""


def lock_path(db: str) -> str:
    """The lock file of database `db`: beside the real file, whatever symlink names it."""
    return os.path.realpath(db) + ".lock"


@contextmanager
def holding(db: str, *, now: Callable[[], datetime]) -> Iterator[str]:
    """Hold the lock of `db` while the block runs; `DatabaseInUse` if another process has it.

    Yields the lock file's path. An in-memory database has no lock (nobody else can open it).
    """
    if db == ":memory:":
        yield ""
        return
    path = lock_path(db)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(descriptor))
            raise DatabaseInUse(
                f"database {os.path.abspath(db)!r} is in use by another flowlord run "
                f"({holder}; lock file {path!r})"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": rfc3339(now()),
            "db": os.path.abspath(db),
        }
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps(holder).encode() + b"\n", 0)
        try:
            yield path
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # releases the lock


def _read_holder(descriptor: int) -> dict[str, object]:
    try:
        holder = json.loads(os.pread(descriptor, MAX_HOLDER_BYTES, 0))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if "pid" not in holder:
        return "holder unknown: it is starting or did not say"
    return (
        f"pid {holder.get('pid')} on host {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}"
    )
