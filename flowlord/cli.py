"""The `flowlord` command. `main(argv)` is a function of its arguments, tested by calling it.

Errors are translated to messages and exit codes here, and only here. Bad input of any kind (a
command line, a setting, a path, a database, a task record that cannot be changed) prints one line,
`flowlord: <message>`, and exits 2. An unexpected error prints one line naming it and exits 70
(EX_SOFTWARE: our fault, not the input's); its traceback goes to the log at debug level, so
`--log-level debug` (or `FLOWLORD_LOG_LEVEL=debug`) shows it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime

import apsw

from cache import SchemaError
from cache.watcher import WatchSettings
from flowlord import control_commands, listing, logs, service, task_commands, validate, version
from flowlord.bus import BusFolderError
from flowlord.cli_parsing import Command, Parser, UsageError
from flowlord.config import (
    SETTINGS,
    ConfigError,
    RunConfig,
    flag_name,
    read_config_file,
    resolve_config,
)
from flowlord.shutdown import stop_on_signals
from flowlord.state import ALERT_KINDS, StoreError
from flowlord.watch import watch_until
from flowlord.worker_cli import add_worker_commands
from workflow import WorkflowError
from workflow.controls import ControlError
from workflow.state import IllegalTransition, State

EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
INPUT_ERRORS = (
    ConfigError, WorkflowError, SchemaError, StoreError, IllegalTransition, BusFolderError,
    ControlError, OSError, apsw.Error,
)  # fmt: skip
"""Errors that say the input (argv, settings, files, the database) is at fault: exit 2."""

log = logging.getLogger("flowlord")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `flowlord` subcommand; returns the process exit code."""
    try:
        args = _parser().parse_args(argv)
        command: Command = args.command
        flags = {name: getattr(args, name, None) for name in command.uses}
        file = read_config_file(args.config) if command.reads_file else None
        config = resolve_config(
            flags, os.environ, file, uses=command.uses, required=command.required
        )
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except (UsageError, ConfigError) as err:
        return _fail(str(err), EXIT_USAGE)
    with logs.logging_to(sys.stderr, level=config.log_level, log_format=config.log_format):
        return _run(command, args, config)


def _run(command: Command, args: argparse.Namespace, config: RunConfig) -> int:
    """The one place that turns an exception into a message and an exit code."""
    try:
        code = command.run(args, config)
        sys.stdout.flush()  # a closed pipe shows here, not as noise at interpreter exit
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `flowlord phases | head`: the reader has all it wanted
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except (UsageError, *INPUT_ERRORS) as err:
        log.debug("%s failed", args.name, exc_info=True)
        return _fail(_describe(err, args, config), EXIT_USAGE)
    except Exception as err:
        log.debug("internal error in %s", args.name, exc_info=True)
        message = f"internal error: {type(err).__name__}: {err}"
        hint = "; run with --log-level debug for the traceback"
        return _fail(message + hint, EXIT_INTERNAL)


def _describe(err: Exception, args: argparse.Namespace, config: RunConfig) -> str:
    if isinstance(err, apsw.Error):
        database = getattr(args, "db", None) or config.db
        return f"database {database!r}: {type(err).__name__}: {err}"
    if isinstance(err, OSError) and err.strerror:
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        return ": ".join([*names, err.strerror])
    return str(err)


def _fail(message: str, code: int) -> int:
    one_line = "; ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"flowlord: {one_line}", file=sys.stderr)
    return code


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **_: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"flowlord {version()}")
        parser.exit()


def _path_argument(text: str) -> str:
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} contains a NUL character")
    return text


def _milliseconds(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 60_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 60000")
    return int(text)


LOGGING = ("log_level", "log_format")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="flowlord", description="TOML workflows, scheduled.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=Parser)

    def add(name: str, command: Command, **texts: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, **texts)
        sub.set_defaults(command=command, name=name, config=None)
        for setting in (name for name in command.uses if not SETTINGS[name].file_only):
            sub.add_argument(flag_name(setting), dest=setting, metavar=SETTINGS[setting].metavar,
                             help=SETTINGS[setting].help)  # fmt: skip
        if command.reads_file:
            sub.add_argument("--config", metavar="FILE", help="settings file (./flowlord.toml)")
        return sub

    check = add("validate", Command(_validate, LOGGING, reads_file=False),
        help="check workflow files",
        description="Check workflow files: exit 0 when fine or warnings only, 1 on any error, "
        "2 when a path does not exist or cannot be read.",
    )  # fmt: skip
    check.add_argument("paths", nargs="+", metavar="PATH", type=_path_argument)
    check.add_argument("--json", action="store_true", help="machine-readable output")

    phases = add("phases", Command(listing.phases, ("workflows", "db", *LOGGING), ("workflows",)),
        help="load a workflow folder into the cache database and list its phases",
        description="Refresh the cache database from the workflow folder, then list phases. "
        "Exit 1 when any file fails to load (its last good phases are kept).",
    )  # fmt: skip
    phases.add_argument("--file", metavar="KEY", help="only this workflow file")
    phases.add_argument("--topic", help="only phases of this topic")
    phases.add_argument("--status", help="error, warning, ok, or text the status contains")
    phases.add_argument("--json", action="store_true", help="machine-readable output")

    plan = add("schedule", Command(listing.schedule, ("workflows", "db", "timezone", *LOGGING),
                                   ("workflows",)),
        help="list every cron and files phase with its previous and next fire time",
        description="Refresh the cache database from the workflow folder, then list what "
        "starts on its own: cron phases with their fire times in the time zone of run, and "
        "files phases. Exit 1 when any phase will not run or any file fails to load.",
    )  # fmt: skip
    plan.add_argument("--json", action="store_true", help="machine-readable output")

    _add_task_commands(add)
    _add_control_commands(add)

    follow = add("watch", Command(_watch, LOGGING, reads_file=False),
        help="print each change to the workflow files as it is applied",
        description="Load the workflow folder, then print every change as files are saved: "
        "phases added, removed and changed, their findings, and load errors. Ctrl-C stops.",
    )  # fmt: skip
    follow.add_argument("path", metavar="PATH", type=_path_argument)
    follow.add_argument("--db", default=":memory:", type=_path_argument, metavar="FILE",
                        help="cache database file (default: in memory)")  # fmt: skip
    follow.add_argument("--debounce-ms", type=_milliseconds, default=50,
                        help="group events this long (1 to 60000)")  # fmt: skip
    follow.add_argument("--poll", action="store_true", help="poll, for network filesystems")

    run = add("run", Command(_run_taskmaster, tuple(SETTINGS), ("workflows",)),
        help="run the taskmaster: cache, watcher, cron scheduler and resolver",
        description="Settings come from flags, then FLOWLORD_* environment variables (e.g. "
        "FLOWLORD_TIMEZONE), then flowlord.toml, then defaults. SIGINT/SIGTERM stop it cleanly.",
    )  # fmt: skip
    run.add_argument("--start-paused", action="store_true",
                     help="pause every workflow file at start (then: flowlord resume)")  # fmt: skip

    add_worker_commands(commands)
    return parser


def _add_task_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """`tasks`, `task`, `alerts`, `stats`, `retry`, `cancel`: the task state (DESIGN §4)."""
    uses = ("db", *LOGGING)
    listing_ = add("tasks", Command(task_commands.tasks, uses),
                   help="list task records, newest first")  # fmt: skip
    listing_.add_argument("--state", choices=[state.value for state in State])
    for name in ("type", "job", "workflow", "id"):
        listing_.add_argument(f"--{name}", help=f"only records of this {name}")
    when = "an RFC 3339 time, or a duration back from now (24h)"
    for name in ("since", "until"):
        listing_.add_argument(f"--{name}", type=task_commands.moment, metavar="TIME", help=when)
    listing_.add_argument("--limit", type=task_commands.limit, default=100)
    one = add("task", Command(task_commands.task, uses), help="one record and its transitions")
    one.add_argument("rec", type=task_commands.record_number, metavar="REC")
    alerts = add("alerts", Command(task_commands.alerts, uses), help="alert records, newest first")
    alerts.add_argument("--since", type=task_commands.moment, metavar="TIME")
    alerts.add_argument("--kind", choices=ALERT_KINDS)
    alerts.add_argument("--limit", type=task_commands.limit, default=100)
    figures = add("stats", Command(task_commands.stats, uses), help="records by state, age, size")
    again = add("retry", Command(task_commands.retry, uses),
                help="queue a new attempt of a finished record (origin manual)")  # fmt: skip
    again.add_argument("rec", type=task_commands.record_number, metavar="REC")
    again.add_argument("--by", metavar="NAME", help="who asks (default: the user)")
    stop = add("cancel", Command(task_commands.cancel, uses), help="cancel an unfinished record")
    stop.add_argument("rec", type=task_commands.record_number, metavar="REC")
    stop.add_argument("--reason", default="", help="why, for the audit")
    stop.add_argument("--by", metavar="NAME", help="who asks (default: the user)")
    for command in (listing_, one, alerts, figures, again, stop):
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _add_control_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    """`pause`, `resume`, `controls`: the workflow switches (DESIGN §5)."""
    uses = ("db", *LOGGING)
    hold = add("pause", Command(control_commands.pause, uses),
               help="pause a workflow file or one phase: its tasks are held, not sent",
               description="Tasks the workflow (or phase) would send are recorded as held "
               "until it is resumed; tasks already sent run to their end.")  # fmt: skip
    hold.add_argument("--reason", required=True, help="why, for the audit and the dashboard")
    free = add("resume", Command(control_commands.resume, uses),
               help="resume a paused workflow file or phase, releasing its held tasks",
               description="Held tasks are sent in the order they were created, or cancelled "
               "with --discard-held.")  # fmt: skip
    free.add_argument("--discard-held", action="store_true", help="cancel the held tasks")
    for command in (hold, free):
        command.add_argument("workflow", metavar="WORKFLOW", help="the file key, as phases shows")
        command.add_argument("phase", nargs="?", metavar="PHASE", help="one phase (task name)")
        command.add_argument("--by", metavar="NAME", help="who asks (default: the user)")
    shown = add("controls", Command(control_commands.listing, uses),
                help="list the workflow switches and their latest changes")  # fmt: skip
    for command in (hold, free, shown):
        command.add_argument("--json", action="store_true", help="machine-readable output")


def _validate(args: argparse.Namespace, _: RunConfig) -> int:
    reports = validate.validate_paths(args.paths)
    print(validate.render_json(reports) if args.json else validate.render_text(reports))
    code = validate.exit_code(reports)
    if code == validate.UNREADABLE:  # the report has them all; stderr says why the exit is 2
        unreadable = [r.error for r in reports if r.unreadable]
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        return _fail(unreadable[0] + more, code)
    return code


def _run_taskmaster(args: argparse.Namespace, config: RunConfig) -> int:
    with stop_on_signals() as stop:
        return service.run_taskmaster(config, stop, start_paused=args.start_paused)


def _watch(args: argparse.Namespace, _: RunConfig) -> int:
    settings = WatchSettings(debounce_ms=args.debounce_ms, force_polling=args.poll)
    with stop_on_signals() as stop:
        return watch_until(
            args.path, args.db, stop=stop, out=sys.stdout, now=_local_now, settings=settings
        )


def _local_now() -> datetime:
    return datetime.now().astimezone()
