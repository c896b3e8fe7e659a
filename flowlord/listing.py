"""`flowlord phases` and `flowlord schedule`: the cache refreshed, then listed for people or
machines. Errors are not translated here: the CLI's one edge does that.

The reads behind them (`SQLiteCache.phases`, `upcoming.scheduled`, `load_failures`) serve the
API too, and so do the views read here for it and the dashboard: each workflow file with its
findings and switch, one file with its phases, one phase with its family and fire times."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from cache import RefreshError, SQLiteCache, WorkflowFile
from flowlord import validate
from flowlord.config import RunConfig
from flowlord.table import format_table
from flowlord.upcoming import Upcoming, scheduled, starts
from workflow import PhaseRecord
from workflow.chains import ChainNode, children_chain
from workflow.controls import WHOLE_FILE, Control
from workflow.validate import status_has_error, status_has_warning


def _load(config: RunConfig) -> tuple[SQLiteCache, dict[str, str]]:
    """The cache refreshed from the workflow folder, and what failed to load (by file from
    the database, which keeps earlier failures too; by folder from this refresh)."""
    cache = SQLiteCache(config.workflows, config.db)
    try:
        cache.refresh()
        unlisted: dict[str, str] = {}
    except RefreshError as err:
        unlisted = err.errors
    return cache, load_failures(cache, unlisted)


def load_failures(cache: SQLiteCache, refresh_errors: dict[str, str]) -> dict[str, str]:
    """Every file that does not load (from this refresh or an earlier one, as the database
    keeps them), saying whether its last good phases are kept; and every folder that cannot
    be listed (`refresh_errors` names those by folder)."""
    files = {f.file_path: f for f in cache.workflow_files()}
    failures = {key: f"{f.error} ({'last good phases kept' if f.file_hash else 'not loaded'})"
                for key, f in files.items() if f.error}  # fmt: skip
    failures.update({key: f"{why} (phases under it kept)" for key, why in refresh_errors.items()
                     if key not in files})  # fmt: skip
    return failures


def phases(args: argparse.Namespace, config: RunConfig) -> int:
    """List phases (filtered); exit 1 when any file does not load."""
    cache, failures = _load(config)
    try:
        records = cache.phases(args.file, topic=args.topic, status=args.status)
    finally:
        cache.close()
    if args.json:
        rows = [
            {"file": p.file_path, "task": p.task, "depends_on": p.depends_on, "rule": p.rule,
             "retry": p.retry, "template": p.template, "status": p.status}
            for p in records
        ]  # fmt: skip
        print(json.dumps({"phases": rows, "errors": failures}, indent=2))
    else:
        table = [(p.file_path, p.task, p.depends_on, p.rule, p.status or "ok") for p in records]
        print(format_table(validate.HEADERS, table))
        for message in failures.values():
            print(f"error: {message}", file=sys.stderr)
    return 1 if failures else 0


def schedule(args: argparse.Namespace, config: RunConfig) -> int:
    """List what starts on its own; exit 1 when any phase will not run or file not load."""
    cache, failures = _load(config)
    try:
        rows = scheduled(cache, config.zone, datetime.now(config.zone))
    finally:
        cache.close()
    if args.json:
        shown = [
            {"file": r.file, "task": r.task, "trigger": r.trigger, "problem": r.problem,
             "previous": r.previous.isoformat() if r.previous else None,
             "next": r.next.isoformat() if r.next else None}
            for r in rows
        ]  # fmt: skip
        print(json.dumps({"timezone": config.timezone, "phases": shown, "errors": failures},
                         indent=2))  # fmt: skip
    else:
        table = [
            (r.file, r.task, r.trigger, _when(r.previous), _when(r.next), r.problem or "ok")
            for r in rows
        ]
        headers = ("file", "task", "trigger", "previous", f"next ({config.timezone})", "status")
        print(format_table(headers, table))
        for message in failures.values():
            print(f"error: {message}", file=sys.stderr)
    return 1 if failures or any(r.problem for r in rows) else 0


def _when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowSummary:
    """One workflow file: its row, how many phases it has and how many have an error or a
    warning, and its whole-file switch (`control` None: never switched, so it runs)."""

    file: WorkflowFile
    phases: int
    errors: int
    warnings: int
    control: Control | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowDetail:
    """One workflow file with its phases in file order and their own switches (by task)."""

    summary: WorkflowSummary
    phases: list[PhaseRecord]
    switches: dict[str, Control] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseDetail:
    """One phase, the phases it depends on, every phase it starts (a tree), how it starts on
    its own (None when only a parent starts it), and the switches of its file's phases."""

    phase: PhaseRecord
    parents: list[PhaseRecord]
    children: tuple[ChainNode, ...]
    starts: Upcoming | None
    switches: dict[str, Control] = field(default_factory=dict)


def phase_switches(controls: Iterable[Control]) -> dict[tuple[str, str], Control]:
    """The switches of single phases, by (workflow, task); whole-file ones are left out."""
    return {(c.workflow, c.phase): c for c in controls if c.phase != WHOLE_FILE}


def workflow_summaries(cache: SQLiteCache, controls: Iterable[Control]) -> list[WorkflowSummary]:
    """Every known file (loaded or failing), by key."""
    switches = {c.workflow: c for c in controls if c.phase == WHOLE_FILE}
    by_file: defaultdict[str, list[PhaseRecord]] = defaultdict(list)
    for phase in cache.phases():
        by_file[phase.file_path].append(phase)
    return [
        _summary(f, by_file[f.file_path], switches.get(f.file_path)) for f in cache.workflow_files()
    ]


def workflow_detail(
    cache: SQLiteCache, controls: Iterable[Control], key: str
) -> WorkflowDetail | None:
    """One file with its phases; None when the cache does not know `key`."""
    found = cache.workflow_file(key)
    if found is None:
        return None
    controls = list(controls)
    whole = next((c for c in controls if c.workflow == key and c.phase == WHOLE_FILE), None)
    phases = cache.phases(key)
    switches = _file_switches(controls, key)
    return WorkflowDetail(summary=_summary(found, phases, whole), phases=phases, switches=switches)


def _summary(
    found: WorkflowFile, phases: list[PhaseRecord], control: Control | None
) -> WorkflowSummary:
    return WorkflowSummary(
        file=found, phases=len(phases), control=control,
        errors=sum(status_has_error(p.status) for p in phases),
        warnings=sum(status_has_warning(p.status) for p in phases),
    )  # fmt: skip


def phase_detail(
    cache: SQLiteCache,
    controls: Iterable[Control],
    *,
    key: str,
    task: str,
    zone: tzinfo,
    now: datetime,
) -> PhaseDetail | None:
    """One phase of file `key` with its family and fire times around `now`; None when the
    file or the task is unknown."""
    family = cache.phases(key)
    phase = next((p for p in family if p.task == task), None)
    if phase is None:
        return None
    return PhaseDetail(
        phase=phase, parents=cache.parents(key, task), children=children_chain(family, task),
        starts=starts(phase, zone, now), switches=_file_switches(controls, key),
    )  # fmt: skip


def _file_switches(controls: Iterable[Control], key: str) -> dict[str, Control]:
    """The switches of single phases of file `key`, by task."""
    return {task: c for (workflow, task), c in phase_switches(controls).items() if workflow == key}
