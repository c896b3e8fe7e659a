"""What every subcommand's parser shares: `Command` (a function and the settings it reads),
`Parser` (usage errors as one line) and `UsageError`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from flowlord.config import RunConfig


class UsageError(ValueError):
    """A command line that cannot be used; the message names the argument and why."""


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its function and the settings it reads (flag, environment, file)."""

    run: Callable[[argparse.Namespace, RunConfig], int]
    uses: tuple[str, ...]
    required: tuple[str, ...] = ()
    reads_file: bool = True


class Parser(argparse.ArgumentParser):
    """Usage errors become `UsageError`s: one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("flowlord").strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")
