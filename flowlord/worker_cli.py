"""`flowlord worker nop` and `flowlord worker exec`: their arguments, checked before anything
starts (DESIGN §8); the work itself is `flowlord.worker.commands`."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from flowlord.bus import check_topic
from flowlord.bus.base import check_group
from flowlord.cli_parsing import Command, Parser, UsageError
from flowlord.config import SETTINGS, RunConfig, flag_name
from flowlord.worker import WORKER_SETTINGS
from flowlord.worker import commands as worker_commands
from flowlord.worker.exec import check_program
from flowlord.worker.serving import refuse_memory_bus
from workflow.command import CommandError, CommandTemplate
from workflow.duration import DurationError, format_duration, parse_duration

WORKER = WORKER_SETTINGS
"""The settings of both workers: the bus, the done topic, logging (`flowlord.worker`)."""
MAX_CONCURRENCY = 256
MIN_TIMEOUT = timedelta(milliseconds=1)
MAX_WORKER_DURATION = timedelta(days=365)


class _WorkerParser(Parser):
    """The parser of a worker kind; with `split_command`, everything after the first `--` is
    the command (`command_line`), taken verbatim: argparse never sees it, so its arguments may
    look like options, and Python versions that treat `--` differently agree."""

    def __init__(self, *args: Any, split_command: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._split_command = split_command

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        args = list(sys.argv[1:] if args is None else args)
        command_line = None
        if self._split_command and "--" in args:
            cut = args.index("--")
            args, command_line = args[:cut], args[cut + 1 :]
        parsed, extras = super().parse_known_args(args, namespace)
        if self._split_command:
            parsed.command_line = command_line
        return parsed, extras


def _duration_seconds(*, least: timedelta) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = parse_duration(text)
        except DurationError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a duration such as 90s, 10m or 1h30m"
            ) from None
        if not least <= value <= MAX_WORKER_DURATION:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not from {format_duration(least)} to "
                f"{format_duration(MAX_WORKER_DURATION)}"
            )
        return value.total_seconds()

    return parse


def _concurrency(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number from 1 to {MAX_CONCURRENCY}"
        )
    return int(text)


def _topic(text: str) -> str:
    try:
        return check_topic(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _group(text: str) -> str:
    try:
        return check_group(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_worker_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """`worker nop` and `worker exec` (DESIGN §8): each with the settings of `run`'s bus."""
    worker = commands.add_parser("worker", help="run a worker: nop (the demo) or exec "
                                 "(a command for each task)",
        description="Workers read tasks from the bus and answer on the done topic. Settings as "
        "for run: flags, then FLOWLORD_* variables, then flowlord.toml. The first SIGINT or "
        "SIGTERM lets running tasks finish (up to the grace); a second stops at once.",
    )  # fmt: skip
    kinds = worker.add_subparsers(dest="kind", required=True, parser_class=_WorkerParser)

    def kind(name: str, command: Command, **texts: Any) -> argparse.ArgumentParser:
        sub = kinds.add_parser(name, **texts)
        sub.set_defaults(command=command, name=f"worker {name}", config=None)
        for setting in command.uses:
            sub.add_argument(flag_name(setting), dest=setting, metavar=SETTINGS[setting].metavar,
                             help=SETTINGS[setting].help)  # fmt: skip
        sub.add_argument("--config", metavar="FILE", help="settings file (./flowlord.toml)")
        return sub

    nop = kind("nop", Command(_worker_nop, (*WORKER, "workflows")),
        help="the demo: complete every task it reads",
        description="Complete every task it reads. With workflows, it reads their topics and "
        "follows workflow files added later.",
    )  # fmt: skip
    nop.add_argument("--topics", metavar="A,B", help="topics to read")
    nop.add_argument("--fail-first", action="append", default=[], metavar="TOPIC=N",
                     help="fail the first N tasks of TOPIC (shows retries)")  # fmt: skip

    run = kind("exec", Command(_worker_exec, WORKER), split_command=True,
        usage="flowlord worker exec --topic T [--topic T2 ...] [options] -- COMMAND [ARGS...]",
        help="run a command for each task",
        description="Run COMMAND for each task of the topics: {info} in an argument becomes "
        "the task's info, {meta:KEY} the value of KEY in its meta (a task without KEY fails "
        "without running anything); other braces are left as they are. No shell is involved "
        "unless the command is sh -c '...'. The task's JSON is in FLOWLORD_TASK. Exit 0 "
        "completes the task; any other end fails it, with the end of stderr as its msg. On the "
        "file bus, run one worker per group and topic; on Redis, any number.",
    )  # fmt: skip
    run.add_argument("--topic", action="append", default=[], metavar="T", type=_topic,
                     help="a topic to read (repeat for more)")  # fmt: skip
    run.add_argument("--timeout", metavar="D", type=_duration_seconds(least=MIN_TIMEOUT),
                     help="kill a command running longer (SIGTERM, then SIGKILL after 5s); "
                     "90s, 10m, 1h30m (default: none)")  # fmt: skip
    run.add_argument("--concurrency", metavar="N", type=_concurrency, default=1,
                     help=f"commands run at once, 1 to {MAX_CONCURRENCY} (default 1)")  # fmt: skip
    run.add_argument("--grace", metavar="D", type=_duration_seconds(least=timedelta(0)),
                     default=30.0, help="on SIGINT/SIGTERM, how long running commands may "
                     "finish before they are killed and left to another worker "
                     "(default 30s)")  # fmt: skip
    run.add_argument("--group", metavar="G", type=_group, default="workers",
                     help="the consumer group, shared by workers doing the same work "
                     "(default workers)")  # fmt: skip
    run.add_argument("stray", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def _worker_nop(args: argparse.Namespace, config: RunConfig) -> int:
    topics = [topic.strip() for topic in (args.topics or "").split(",") if topic.strip()]
    for topic in topics:
        try:
            check_topic(topic)
        except ValueError as err:
            raise UsageError(f"--topics: {err}") from None
    refuse_memory_bus(config)
    if not topics and not config.workflows:
        raise UsageError("worker needs --topics, or workflows (--workflows, FLOWLORD_WORKFLOWS "
                         "or workflows in flowlord.toml)")  # fmt: skip
    fail_first = {}
    for item in args.fail_first:
        topic, _, count = item.partition("=")
        if not count.isascii() or not count.isdigit():
            raise UsageError(f"--fail-first {item!r}: expected TOPIC=N")
        fail_first[topic] = int(count)
    return worker_commands.run_nop_worker(config, topics, fail_first=fail_first)


def _worker_exec(args: argparse.Namespace, config: RunConfig) -> int:
    if args.stray or args.command_line is None:
        got = f" (not {shlex.join(args.stray)!r})" if args.stray else ""
        raise UsageError(f"worker exec: give the command after --{got}, as in: flowlord "
                         "worker exec --topic T -- COMMAND ARGS...")  # fmt: skip
    try:
        template = CommandTemplate.parse(args.command_line)
        check_program(template)
    except CommandError as err:
        why = "no command after --" if not args.command_line else str(err)
        raise UsageError(f"worker exec: {why}") from None
    if not args.topic:
        raise UsageError("worker exec: give at least one --topic")
    for topic in args.topic:
        if topic == config.done_topic:
            origin = config.origins.get("done_topic", "the default")
            raise UsageError(f"worker exec: --topic {topic!r} is the done topic (config "
                             f"'done_topic' from {origin}): the worker would read its own "
                             "answers")  # fmt: skip
    refuse_memory_bus(config)
    return worker_commands.run_exec_worker(
        config, template, topics=list(dict.fromkeys(args.topic)), timeout=args.timeout,
        concurrency=args.concurrency, grace=args.grace, group=args.group,
    )  # fmt: skip
