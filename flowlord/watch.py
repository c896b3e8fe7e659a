"""`flowlord watch`: show each saved workflow file as flowlord sees it, as it is applied."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TextIO

from cache import RefreshError, SQLiteCache
from cache.watcher import WatchSettings
from workflow import PhaseRecord

Phases = Mapping[str, PhaseRecord]


def describe_change(key: str, before: Phases, after: Phases, *, removed: bool) -> list[str]:
    """What a reload did to one file: phases added, removed and changed, and their findings."""
    if removed:
        return [f"{key}: removed ({len(before)} phase(s) dropped)"]
    added = [task for task in after if task not in before]
    dropped = [task for task in before if task not in after]
    changed = [task for task in after if task in before and after[task] != before[task]]
    summary = f"+{len(added)} added, -{len(dropped)} removed, ~{len(changed)} changed"
    lines = [f"{key}: loaded, {len(after)} phase(s): {summary}"]
    lines += [f"  + {task}{_where(after[task])}" for task in added]
    lines += [f"  - {task}" for task in dropped]
    lines += [f"  ~ {task}: {_difference(before[task], after[task])}" for task in changed]
    lines += [f"  ! {task}: {p.status}" for task, p in after.items() if p.status]
    return lines


def _where(phase: PhaseRecord) -> str:
    parts = [f"dependsOn {phase.depends_on}" if phase.depends_on else "", phase.rule]
    shown = ", ".join(part for part in parts if part)
    return f" ({shown})" if shown else ""


def _difference(old: PhaseRecord, new: PhaseRecord) -> str:
    fields = ("rule", "depends_on", "retry", "template", "status")
    return "; ".join(
        f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}"
        for name in fields
        if getattr(old, name) != getattr(new, name)
    )


class ChangePrinter:
    """Keeps the phases last shown per file, to print what each reload changed."""

    def __init__(self, cache: SQLiteCache, out: TextIO, now: Callable[[], datetime]) -> None:
        self._cache = cache
        self._out = out
        self._now = now
        self._shown: dict[str, dict[str, PhaseRecord]] = {}
        for phase in cache.phases():
            self._shown.setdefault(phase.file_path, {})[phase.task] = phase

    def print_start(self, path: str) -> None:
        phases = sum(len(p) for p in self._shown.values())
        self._print([f"watching {path}: {len(self._shown)} file(s), {phases} phase(s)"])
        for phases_of_file in self._shown.values():
            self._print([f"  ! {t}: {p.status}" for t, p in phases_of_file.items() if p.status])
        for file in self._cache.workflow_files():
            if file.error:
                self._print([f"error: {file.error}{self._kept(file.file_path)}"])

    def on_change(self, keys: list[str]) -> None:
        for key in keys:
            removed = key.startswith("-")
            name = key[1:] if removed else key
            before = self._shown.pop(name, {})
            after = {} if removed else {p.task: p for p in self._cache.phases(name)}
            if after:
                self._shown[name] = after
            self._print(describe_change(name, before, after, removed=removed))

    def on_error(self, err: Exception) -> None:
        if isinstance(err, RefreshError):
            self._print(
                [f"error: {message} (last good phases kept)" for message in err.errors.values()]
            )
        else:
            self._print([f"error: {err}"])

    def _kept(self, key: str) -> str:
        return " (last good phases kept)" if key in self._shown else " (not loaded)"

    def _print(self, lines: list[str]) -> None:
        stamp = self._now().strftime("%H:%M:%S")
        for line in lines:
            print(f"{stamp} {line}", file=self._out, flush=True)


def watch_until(
    path: str,
    db: str,
    *,
    stop: threading.Event,
    out: TextIO,
    now: Callable[[], datetime],
    settings: WatchSettings,
) -> int:
    """Load `path`, print it, then print every change until `stop` is set."""
    cache = SQLiteCache(path, db, now=now)
    try:
        with contextlib.suppress(RefreshError):  # failures are shown from workflow_files
            cache.refresh()
        printer = ChangePrinter(cache, out, now)
        printer.print_start(path)
        cache.watch(printer.on_change, on_error=printer.on_error, settings=settings)
        stop.wait()
    finally:
        cache.close()
    return 0
