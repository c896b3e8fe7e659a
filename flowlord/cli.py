"""The `flowlord` command. `main(argv)` is a function of its arguments, tested by calling it.

Domain errors are translated to messages and exit codes here, and only here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime

from cache import RefreshError, SchemaError, SQLiteCache
from cache.watcher import WatchSettings
from flowlord import service, validate
from flowlord.config import ConfigError, resolve_config
from flowlord.table import format_table
from flowlord.watch import watch_until

DEFAULT_DB = "flowlord.db"
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `flowlord` subcommand; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (FileNotFoundError, IsADirectoryError, SchemaError, ConfigError) as err:
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

    run = commands.add_parser(
        "run",
        help="run the taskmaster: cache, watcher, cron scheduler and resolver",
        description="Settings come from flags, then FLOWLORD_* environment variables (e.g. "
        "FLOWLORD_TIMEZONE), then flowlord.toml, then defaults. SIGINT/SIGTERM stop it cleanly.",
    )
    run.add_argument("--workflows", metavar="DIR", help="workflow folder or file")
    run.add_argument("--db", metavar="FILE", help="cache database (default flowlord.db)")
    run.add_argument("--bus", choices=("file", "memory"), help="bus adapter (default file)")
    run.add_argument(
        "--bus-dir", dest="bus_dir", metavar="DIR", help="file bus folder (default bus)"
    )
    run.add_argument("--timezone", metavar="ZONE", help="time zone of cron rules (default UTC)")
    run.add_argument("--config", metavar="FILE", help="settings file (default ./flowlord.toml)")
    run.set_defaults(command=_run)

    worker = commands.add_parser(
        "worker", help="run a demo worker", description="nop: complete every task it reads."
    )
    worker.add_argument("kind", choices=("nop",))
    worker.add_argument("--bus-dir", default="bus", metavar="DIR", help="file bus folder")
    worker.add_argument("--topics", metavar="A,B", help="topics to read")
    worker.add_argument("--workflows", metavar="DIR", help="read every topic of these workflows")
    worker.add_argument(
        "--fail-first", action="append", default=[], metavar="TOPIC=N",
        help="fail the first N tasks of TOPIC (shows retries)",
    )  # fmt: skip
    worker.set_defaults(command=_worker)
    return parser


def _validate(args: argparse.Namespace) -> int:
    reports = validate.validate_paths(args.paths)
    print(validate.render_json(reports) if args.json else validate.render_text(reports))
    return validate.exit_code(reports)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _run(args: argparse.Namespace) -> int:
    flags = {"workflows": args.workflows, "db": args.db, "bus": args.bus,
             "bus_dir": args.bus_dir, "timezone": args.timezone}  # fmt: skip
    config = resolve_config(flags, os.environ, args.config)
    _log_to_stderr()
    return service.run_taskmaster(config, _stop_on_signals())


def _worker(args: argparse.Namespace) -> int:
    topics = [t for t in (args.topics or "").split(",") if t]
    if args.workflows:
        cache = SQLiteCache(args.workflows)
        with contextlib.suppress(RefreshError):
            cache.refresh()
        topics += sorted({p.topic for p in cache.phases()} - set(topics))
        cache.close()
    if not topics:
        raise ConfigError("worker needs --topics or --workflows")
    fail_first = {}
    for item in args.fail_first:
        topic, _, count = item.partition("=")
        if not count.isdigit():
            raise ConfigError(f"--fail-first {item!r}: expected TOPIC=N")
        fail_first[topic] = int(count)
    _log_to_stderr()
    return service.run_nop_worker(args.bus_dir, topics, _stop_on_signals(), fail_first=fail_first)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _watch(args: argparse.Namespace) -> int:
    stop = _stop_on_signals()
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
