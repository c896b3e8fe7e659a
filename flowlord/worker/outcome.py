"""What a handler returns, and the done message made of it (the wire protocol's answer).

A done message is the task as received with `started`, `ended` (RFC 3339), `result` and `msg`
set; the taskmaster finds its record by `id`, `type`, `job`, `info` and the meta `retry`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from flowlord.bus import Message
from workflow.task import Result, Task, TaskError, parse_time, rfc3339

log = logging.getLogger("flowlord.worker")

MAX_ERROR_MSG = 2000
"""Characters of an exception's text kept in a done message's `msg`."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended, when a plain `str` (complete, with that msg) does not say it."""

    result: Result
    msg: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.result, Result) or self.result is Result.NONE:
            raise ValueError(f"an Outcome needs a Result other than NONE, not {self.result!r}")
        if not isinstance(self.msg, str):
            raise TypeError(f"Outcome.msg must be a str, not {type(self.msg).__name__}")


Handler = Callable[[Task], "Outcome | str | None"]
"""`handler(task)`: None or a str → complete (msg the str); an Outcome; an exception → error."""


def outcome_of(handler: Handler, task: Task) -> Outcome:
    """Run `handler` on `task`; whatever it does, an Outcome. A failure is logged with the
    traceback and the task's id, and becomes an `error` naming the exception."""
    try:
        returned = handler(task)
    except BaseException as err:  # a handler's SystemExit must not end the worker either
        log.error("task %s (%s) failed", task.id, task.type, exc_info=True)
        text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return Outcome(Result.ERROR, head(text, MAX_ERROR_MSG))
    if returned is None:
        return Outcome(Result.COMPLETE)
    if isinstance(returned, str):
        return Outcome(Result.COMPLETE, returned)
    if isinstance(returned, Outcome):
        return returned
    why = f"handler returned {type(returned).__name__}, not Outcome, str or None"
    log.error("task %s (%s): %s", task.id, task.type, why)
    return Outcome(Result.ERROR, why)


def finished(task: Task, outcome: Outcome, *, started: datetime, ended: datetime) -> Task:
    """The done message of `task`."""
    return replace(task, started=rfc3339(started), ended=rfc3339(ended), result=outcome.result,
                   msg=outcome.msg)  # fmt: skip


def perform(handler: Handler, task: Task, now: Callable[[], datetime]) -> Task:
    """Run `handler` on `task` and stamp the done message with the times around it."""
    started = now()
    outcome = outcome_of(handler, task)
    return finished(task, outcome, started=started, ended=now())


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that is not a task; `done` is the error to answer with, when it has an id."""

    why: str
    done: Task | None


def read_task(message: Message, now: Callable[[], datetime]) -> Task | Rejected:
    """The task in `message`, or why it is not one.

    A body that names an `id` and a `type` (non-empty strings) is answered with an `error`
    done message, so the taskmaster records the failure instead of waiting out the task's
    ttl; the done keeps the fields that are valid. Anything else is only logged and acked.
    """
    try:
        return Task.from_json(message.body)
    except TaskError as err:
        why = str(err)
    log.error("bad task on %s at %s: %s", message.topic, message.where, why)
    salvaged = _salvage(message.body)
    if salvaged is None:
        return Rejected(why, None)
    stamp = now()
    return Rejected(why, finished(salvaged, Outcome(Result.ERROR, f"bad task: {why}"),
                                  started=stamp, ended=stamp))  # fmt: skip


def _salvage(body: str) -> Task | None:
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    fields = {name: raw.get(name) for name in ("type", "id", "job", "info", "meta", "created")}
    if not (isinstance(fields["type"], str) and fields["type"]):
        return None
    if not (isinstance(fields["id"], str) and fields["id"]):
        return None
    kept = {name: value for name, value in fields.items() if isinstance(value, str)}
    if kept.get("created"):
        try:
            parse_time(kept["created"], "created")
        except TaskError:
            del kept["created"]
    return Task(**kept)


def head(text: str, limit: int) -> str:
    """`text` cut to its first `limit` characters, marked `…` where cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tail(text: str, limit: int) -> str:
    """`text` cut to its last `limit` characters, marked `…` where cut."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
