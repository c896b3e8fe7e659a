"""The `flowlord` command. `main(argv)` is a function of its arguments, tested by calling it.

Domain errors are translated to messages and exit codes here, and only here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence

from cache import RefreshError, SchemaError, SQLiteCache
from flowlord import validate
from flowlord.table import format_table

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
    return parser


def _validate(args: argparse.Namespace) -> int:
    reports = validate.validate_paths(args.paths)
    print(validate.render_json(reports) if args.json else validate.render_text(reports))
    return validate.exit_code(reports)


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
