"""A unified diff between two versions of a workflow file, as `diff -u` and git print it."""

from __future__ import annotations

import difflib

NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(
    old: str, new: str, *, old_name: str = "a", new_name: str = "b", context: int = 3
) -> str:
    """The unified diff turning `old` into `new` ("" when they are equal).

    A last line without a newline is marked as `diff -u` marks it, so that a change of the
    final newline alone shows, and every line of the diff ends with one.
    """
    lines = difflib.unified_diff(
        _lines(old), _lines(new), fromfile=old_name, tofile=new_name, n=context
    )
    return "".join(line if line.endswith("\n") else line + "\n" + NO_NEWLINE for line in lines)


def _lines(text: str) -> list[str]:
    """Lines with their endings; only `\\n` ends a line, as in TOML (`str.splitlines` would
    also split at form feeds and other separators, which a file may hold inside a string)."""
    lines = text.split("\n")
    last = lines.pop()  # "" when the text ends with a newline
    return [line + "\n" for line in lines] + ([last] if last else [])
