"""`flowlord tasks | task | alerts | stats | retry | cancel`: task state for people and machines.

They read and write the database beside a running `flowlord run` (its leader sees a retry or a
cancel at its next turn). JSON field names are the column names; times are RFC 3339 UTC.
Errors are not translated here: the CLI's one edge does that.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum

from flowlord import operations
from flowlord.config import RunConfig
from flowlord.state import SQLiteTaskStore, TaskFilter, TaskRecord
from flowlord.table import format_table
from workflow.duration import DurationError, parse_duration
from workflow.state import State
from workflow.task import TaskError, parse_time, rfc3339

RECORD_COLUMNS = ("rec", "state", "type", "job", "id", "attempt", "origin", "created", "info")


def moment(text: str) -> datetime:
    """`--since`/`--until`: an RFC 3339 time, or a duration back from now (`24h`, `7d` as
    `168h`)."""
    try:
        return point_in_time(text, now=datetime.now(UTC))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def point_in_time(text: str, *, now: datetime) -> datetime:
    """An RFC 3339 time, or a duration back from `now`, in UTC: how the CLI and the API read
    `since` and `until`. `ValueError` for neither, or for a time no datetime can hold."""
    try:
        found = parse_time(text, "since")
    except TaskError:
        try:
            found = now - parse_duration(text)
        except DurationError:
            raise ValueError(f"{text!r} is neither an RFC 3339 time nor a duration back from "
                             "now (like 24h)") from None  # fmt: skip
        except OverflowError:
            raise ValueError(f"{text!r} reaches past the range of times") from None
    try:
        return found.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 and the like
        raise ValueError(f"{text!r} is out of the range of times") from None


def record_number(text: str) -> int:
    """A `REC` argument: a record number."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise argparse.ArgumentTypeError(f"{text!r} is not a record number")
    return int(text)


def limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:7]) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return int(text)


@contextmanager
def opened(config: RunConfig) -> Iterator[SQLiteTaskStore]:
    store = SQLiteTaskStore(config.db, now=lambda: datetime.now(UTC))
    try:
        yield store
    finally:
        store.close()


def tasks(args: argparse.Namespace, config: RunConfig) -> int:
    where = TaskFilter(
        state=State(args.state) if args.state else None, type=args.type, job=args.job,
        workflow=args.workflow, id=args.id, since=args.since, until=args.until, limit=args.limit,
    )  # fmt: skip
    with opened(config) as store:
        records = store.tasks(where)
    if args.json:
        print_json({"tasks": [plain(r) for r in records]})
    else:
        print(format_table(RECORD_COLUMNS, [_row(r) for r in records]))
    return 0


def task(args: argparse.Namespace, config: RunConfig) -> int:
    with opened(config) as store:
        record = store.get(args.rec)
        transitions = store.transitions(args.rec)
    if args.json:
        print_json({**plain(record), "transitions": [plain(t) for t in transitions]})
        return 0
    for name, value in plain(record).items():
        print(f"{name:<11}{value if value is not None else ''}")
    print()
    rows = [(t.at.isoformat(), t.from_state or "(new)", t.to_state, t.actor, t.reason)
            for t in transitions]  # fmt: skip
    print(format_table(("at", "from", "to", "actor", "reason"), rows))
    return 0


def alerts(args: argparse.Namespace, config: RunConfig) -> int:
    with opened(config) as store:
        found = store.alerts(since=args.since, kind=args.kind, limit=args.limit)
    if args.json:
        print_json({"alerts": [plain(a) for a in found]})
    else:
        rows = [(a.seq, a.at.isoformat(), a.kind, a.rec or "", a.message) for a in found]
        print(format_table(("seq", "at", "kind", "rec", "message"), rows))
    return 0


def stats(args: argparse.Namespace, config: RunConfig) -> int:
    with opened(config) as store:
        figures = store.stats()
    if args.json:
        print_json(plain(figures))
    else:
        print(format_table(("state", "records"), list(figures.states.items())))
        print(format_table(("age", "records"), list(figures.by_age.items())))
        print(f"alerts: {figures.alerts}; database: {figures.db_bytes} bytes")
    return 0


def retry(args: argparse.Namespace, config: RunConfig) -> int:
    with opened(config) as store:
        record = operations.retry(store, args.rec, actor=actor(args))
    _done(args, record, f"record {record.rec} queued: attempt {record.attempt} of {args.rec}")
    return 0


def cancel(args: argparse.Namespace, config: RunConfig) -> int:
    with opened(config) as store:
        record = operations.cancel(store, args.rec, actor=actor(args), reason=args.reason)
    _done(args, record, f"record {record.rec} cancelled")
    return 0


def actor(args: argparse.Namespace) -> str:
    return f"cli:{args.by or _user()}"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown"


def _done(args: argparse.Namespace, record: TaskRecord, line: str) -> None:
    if args.json:
        print_json(plain(record))
    else:
        print(line)


def _row(record: TaskRecord) -> tuple[object, ...]:
    values = plain(record)
    return tuple("" if values[name] is None else values[name] for name in RECORD_COLUMNS)


def plain(value: object) -> dict[str, object]:
    """A record, transition, alert or stats as JSON-ready values (times as RFC 3339 UTC)."""
    fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    return {name: _json_value(v) for name, v in fields.items()}


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return rfc3339(value.astimezone(UTC))
    if isinstance(value, Enum):
        return value.value
    return value


def print_json(document: object) -> None:
    print(json.dumps(document, indent=2))
