"""Command lines with task placeholders, as `flowlord worker exec -- COMMAND ARGS…` takes them.

Each argument is a template on its own: `{info}` becomes the task's info and `{meta:KEY}` the
value of KEY in the task's meta (a URL query, parsed as everywhere in flowlord: percent escapes
decoded, and of a key given twice the first value wins). Any other brace text is left as it
is, so `awk '{print $1}'` means what it says; there is no escape for a literal `{info}`. An
argument is never split and never seen by a shell: a value with spaces or quotes stays one
argument, unless the command itself is `sh -c '…'`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from workflow.task import Task

_PLACEHOLDER = re.compile(r"\{info\}|\{meta:([^{}\s]+)\}")
_META_START = "{meta:"


class CommandError(ValueError):
    """A command template that cannot be used; the message names the argument."""


class MissingMeta(ValueError):
    """A task whose meta lacks a key the command names."""

    def __init__(self, key: str) -> None:
        super().__init__(f"meta key {key!r} is not in the task's meta")
        self.key = key


@dataclass(frozen=True, slots=True)
class CommandTemplate:
    """A program and its arguments, each with placeholders to fill from a task."""

    argv: tuple[str, ...]

    @classmethod
    def parse(cls, argv: Sequence[str]) -> CommandTemplate:
        """Check every `{meta:` starts a whole placeholder: a key of characters other than
        braces and white space, then `}`. CommandError names the first argument that does not."""
        if isinstance(argv, str) or not argv:
            raise CommandError("no command: give the program and its arguments")
        if not argv[0]:
            raise CommandError("the program name is empty")
        for arg in argv:
            start = arg.find(_META_START)
            while start != -1:
                found = _PLACEHOLDER.match(arg, start)
                if found is None:
                    raise CommandError(
                        f"argument {arg!r}: {_META_START} must be followed by a key (no braces "
                        "or spaces) and '}', as in {meta:day}"
                    )
                start = arg.find(_META_START, found.end())
        return cls(tuple(argv))

    @property
    def program(self) -> str:
        return self.argv[0]

    @property
    def fixed_program(self) -> bool:
        """True when the program does not depend on the task, so it can be checked at start."""
        return _PLACEHOLDER.search(self.argv[0]) is None

    def render(self, task: Task) -> list[str]:
        """The argv for `task`; MissingMeta for a `{meta:KEY}` the task's meta lacks."""
        meta = task.meta_values()

        def fill(found: re.Match[str]) -> str:
            key = found.group(1)
            if key is None:
                return task.info
            if key not in meta:
                raise MissingMeta(key)
            return meta[key]

        return [_PLACEHOLDER.sub(fill, arg) for arg in self.argv]
