"""The `flowlord` command. `main(argv)` is a function of its arguments, tested by calling it.

Domain errors are translated to messages and exit codes here, and only here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime

from cache import RefreshError, SchemaError, SQLiteCache
from cache.watcher import WatchSettings
from flowlord import validate
from flowlord.table import format_table
from flowlord.watch import watch_until

DEFAULT_DB = "flowlord.db"
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `flowlord` subcommand; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (FileNotFoundError, IsADirectoryError, SchemaError) as err:
        print(f"flowlord: {err}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowlord", description="TOML workflows, scheduled.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    check = commands.add_parser(
        "validate",
        help="check workflow files",
        description="Check workflow files: exit 0 when fine or warnings only, 1 on any error, "
        "2 when a path does not exist or cannot be read.",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="workflow files or folders")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.set_defaults(command=_validate)

    phases = commands.add_parser(
        "phases",
        help="load a workflow folder into the cache database and list its phases",
        description="Refresh the cache database from the workflow folder, then list phases. "
        "Exit 1 when any file fails to load (its last good phases are kept).",
    )
    phases.add_argument(
        "--workflows", required=True, metavar="PATH", help="workflow folder or file"
    )
    phases.add_argument("--db", default=DEFAULT_DB, metavar="FILE", help="cache database file")
    phases.add_argument("--file", metavar="KEY", help="only this workflow file")
    phases.add_argument("--topic", help="only phases of this topic")
    phases.add_argument("--status", help="only phases whose status contains this text")
    phases.add_argument("--json", action="store_true", help="machine-readable output")
    phases.set_defaults(command=_phases)

    follow = commands.add_parser(
        "watch",
        help="print each change to the workflow files as it is applied",
        description="Load the workflow folder, then print every change as files are saved: "
        "phases added, removed and changed, their findings, and load errors. Ctrl-C stops.",
    )
    follow.add_argument("path", metavar="PATH", help="workflow folder or file")
    follow.add_argument("--db", default=":memory:", metavar="FILE", help="cache database file")
    follow.add_argument("--debounce-ms", type=int, default=50, help="group events this long")
    follow.add_argument(
        "--poll", action="store_true", help="poll instead of OS events (network filesystems)"
    )
    follow.set_defaults(command=_watch)
    return parser


def _validate(args: argparse.Namespace) -> int:
    reports = validate.validate_paths(args.paths)
    print(validate.render_json(reports) if args.json else validate.render_text(reports))
    return validate.exit_code(reports)


def _watch(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    settings = WatchSettings(debounce_ms=args.debounce_ms, force_polling=args.poll)
    return watch_until(
        args.path, args.db, stop=stop, out=sys.stdout, now=_local_now, settings=settings
    )


def _local_now() -> datetime:
    return datetime.now().astimezone()


def _phases(args: argparse.Namespace) -> int:
    cache = SQLiteCache(args.workflows, args.db)
    try:
        # Failures are reported from workflow_files below, which also keeps earlier ones.
        with contextlib.suppress(RefreshError):
            cache.refresh()
        records = cache.phases(args.file, topic=args.topic, status=args.status)
        failures = {f.file_path: f.error for f in cache.workflow_files() if f.error}
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
            print(f"error: {message} (last good phases kept)", file=sys.stderr)
    return 1 if failures else 0
