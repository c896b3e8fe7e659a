"""`flowlord phases` and `flowlord schedule`: the cache refreshed, then listed for people or
machines. Errors are not translated here: the CLI's one edge does that."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from cache import RefreshError, SQLiteCache
from flowlord import validate
from flowlord.config import RunConfig
from flowlord.table import format_table
from flowlord.upcoming import upcoming


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
        rows = upcoming(cache.phases_to_schedule(), config.zone, datetime.now(config.zone))
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
