"""Logging for the `flowlord` command: our one handler on the root logger, text or JSON lines.

`logging_to` adds the handler for the length of a command and takes it away after, so calling
`main(argv)` twice (as tests do) leaves no handler behind and writes no global state of ours.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `at` (RFC 3339, UTC, milliseconds), `level`, `logger`,
    `message`, and `exc` (the formatted traceback) when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry = {
            "at": at.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_handler(stream: TextIO, *, log_format: str) -> logging.Handler:
    """A handler writing to `stream` in `text` or `json` format."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


@contextmanager
def logging_to(stream: TextIO, *, level: str, log_format: str) -> Iterator[logging.Handler]:
    """Log records at `level` and above to `stream` while the block runs; restore after."""
    root = logging.getLogger()
    handler = make_handler(stream, log_format=log_format)
    previous = root.level
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.flush()
