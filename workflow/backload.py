"""Backloads (the Go flowlord's `/backload`): the tasks of one phase over a range of times.

Pure: the caller finds the phase, passes it with `now`, the zone and a meta-file reader, then
shows the plan (a dry run) or records its tasks. Go's defaults hold: no `to` means `from` (and
the reverse), no time at all means today, `at` is a single time, `by` is `day`, and the meta
is the phase rule's when the request gives none. Where Go guesses, this refuses, naming the
field: a time it cannot parse, `from` after `to`, an unknown `by`, an unknown task, a range
over `max_tasks`. Times without an offset are wall times in the zone, as cron's are.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType

from workflow.batch import BatchError, parse_meta, step_count, steps
from workflow.build import MetaRows
from workflow.phase import Phase
from workflow.query import encode_query, parse_query
from workflow.task import Task, TaskError, parse_time, rfc3339
from workflow.template import TemplateError, render
from workflow.validate import status_has_error

FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "task": ("task", "Task"), "job": ("job", "Job"), "workflow": ("workflow", "Workflow"),
    "from": ("from", "From"), "to": ("to", "To"), "at": ("at", "At"), "by": ("by", "By"),
    "meta": ("meta", "Meta"), "meta_file": ("meta_file", "meta-file", "Metafile", "MetaFile"),
    "template": ("template", "Template"), "execute": ("execute", "Execute"),
})  # fmt: skip
"""Each request field by the names it is accepted under: ours first, then the Go flowlord's
(the API's request model takes its aliases from here)."""

MAX_NAME, MAX_TEXT = 200, 4096
"""The longest task, job, workflow, time or meta key; the longest template or meta value
(checked by the API's request model)."""
RESERVED_META = frozenset({"workflow", "job", "cron", "retry"})
"""Meta keys a backload sets itself, or that resolving a done task reads: not the request's."""
MAX_PLAN_CHARS = 16 * 1024 * 1024
"""Info and meta of all tasks of one plan together, so a plan within `max_tasks` stays small."""
BY = MappingProxyType({"hour": "hour", "hourly": "hour", "day": "day", "daily": "day",
                       "month": "month", "monthly": "month"})  # fmt: skip
"""`by` values (any case, Go's `hourly` and `monthly` too) and the step each means."""

_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_HOUR = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2})")
_FORMATS = "use 2006-01-02, 2006-01-02T15 or RFC 3339 (2006-01-02T15:04:05Z)"

MetaObject = Mapping[str, str | Sequence[str]]


class BackloadError(ValueError):
    """A request that cannot be planned: the request `field` at fault (None when no one
    field is), and the HTTP status the API answers with (400, 404 or 422)."""

    def __init__(self, field: str | None, message: str, *, status: int = 422) -> None:
        self.field = field
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A backload request, its JSON types checked (by the API's model); an empty string is
    "not given". `task` may be `topic:job`; `workflow` (a file key) limits the search to one
    file. `plan` checks the rest, naming the field at fault."""

    task: str
    job: str = ""
    workflow: str = ""
    from_: str = ""
    to: str = ""
    at: str = ""
    by: str = ""
    meta: MetaObject | None = None
    meta_file: str = ""
    template: str = ""
    execute: bool = False

    def target(self) -> tuple[str, str]:
        """The topic and job to search for."""
        topic, colon, job = self.task.partition(":")
        if colon and self.job and job != self.job:
            raise BackloadError("job", f"job {self.job!r} differs from task {self.task!r}")
        return topic, job or self.job


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The tasks of a backload, by time then meta item, of the phase `phase` of file
    `workflow`; `notes` say what was assumed (Go's status messages)."""

    workflow: str
    phase: str
    tasks: tuple[Task, ...]
    notes: tuple[str, ...]

    @property
    def status(self) -> str:
        return ", ".join(self.notes)


@dataclass(frozen=True, slots=True)
class _Window:
    first: datetime
    last: datetime
    field: str  # what a range too long, or with no task, is blamed on
    notes: tuple[str, ...]


def plan(
    request: Request,
    *,
    workflow: str,
    phase: Phase,
    now: datetime,
    zone: tzinfo,
    max_tasks: int,
    meta_rows: MetaRows,
    new_id: Callable[[], str],
) -> Plan:
    """The tasks `request` asks for, of `phase` (found in file `workflow`; empty if none).

    Raises `BackloadError` naming the field at fault. A range over `max_tasks` is counted,
    not built. `now` is each task's `created`, and the time when the request gives none.
    """
    _check_phase(request, workflow, phase)
    window = _window(request, now.astimezone(zone), zone)
    by, by_notes = _by(request.by)
    template, template_notes = _template(request, phase)
    items, meta_notes = _items(request, workflow, parse_query(phase.rule), meta_rows)
    count = step_count(window.first, window.last, by)
    if count * len(items) > max_tasks:
        field = window.field if count > max_tasks else "meta_file" if request.meta_file else "meta"
        made = f"{_describe(window, by, len(items))} makes {count * len(items)} tasks"
        raise BackloadError(field, f"{made}, over the limit of {max_tasks} (max_tasks)")
    base = {"workflow": workflow, "cron": "", **({"job": phase.job} if phase.job else {})}
    tasks = _tasks(phase, template, _times(window, by, zone), items, base,
                   created=rfc3339(now), new_id=new_id)  # fmt: skip
    notes = (*window.notes, f"phase found in {workflow}", *template_notes, *by_notes)
    return Plan(workflow=workflow, phase=phase.task, tasks=tasks, notes=(*notes, *meta_notes))


def parse_when(text: str, field: str, zone: tzinfo) -> datetime:
    """A request time: `2006-01-02` (midnight) or `2006-01-02T15`, wall times in `zone`, or
    RFC 3339, moved into `zone`. `BackloadError` (400) naming `field` for anything else."""
    match = _DAY.fullmatch(text) or _HOUR.fullmatch(text)
    try:
        if match:
            return datetime(*map(int, match.groups()), tzinfo=zone)  # type: ignore[misc]
        return parse_time(text, field).astimezone(zone)
    except TaskError:
        problem = f"not a time: {_FORMATS}"
    except (ValueError, OverflowError) as err:
        problem = f"not a valid time ({err})"
    raise BackloadError(field, f"{field}={text!r}: {problem}", status=400)


def _check_phase(request: Request, workflow: str, phase: Phase) -> None:
    topic, job = request.target()
    name = f"{topic}:{job}" if job else topic
    if not workflow or phase.is_empty():
        where = f" in {request.workflow}" if request.workflow else ""
        raise BackloadError("task", f"task {name}: no phase{where} runs it", status=404)
    status = getattr(phase, "status", "")
    if status_has_error(status):
        raise BackloadError("task", f"task {name}: its phase in {workflow} has errors: {status}")


def _window(request: Request, now: datetime, zone: tzinfo) -> _Window:
    """The first and last task time, and Go's notes on what was assumed."""
    if request.at:
        if request.from_ or request.to:
            raise BackloadError("at", "use at, or from and to: not both", status=400)
        at = parse_when(request.at, "at", zone)
        return _Window(at, at, "at", ())
    if not (request.from_ or request.to):
        return _Window(now, now, "at", ("no time provided using today",))
    if not request.to:
        first = parse_when(request.from_, "from", zone)
        return _Window(first, first, "from", ("to value not set",))
    last = parse_when(request.to, "to", zone)
    if not request.from_:
        return _Window(last, last, "to", ("from value not set",))
    first = parse_when(request.from_, "from", zone)
    if first > last:
        raise BackloadError("from", f"from {request.from_} is after to {request.to}")
    return _Window(first, last, "to", ())


def _by(by: str) -> tuple[str, tuple[str, ...]]:
    if not by:
        return "day", ("using default day iterator",)
    if by.lower() not in BY:
        raise BackloadError("by", f"by={by!r}: must be one of day, hour, month")
    return BY[by.lower()], ()


def _template(request: Request, phase: Phase) -> tuple[str, tuple[str, ...]]:
    """The request's template wins over the phase's (Go keeps the phase's)."""
    if request.template:
        return request.template, ("using the request's template",)
    if not phase.template:
        raise BackloadError("template", f"no template found for {phase.task}: give one")
    return phase.template, ()


def _items(
    request: Request, workflow: str, rule: Mapping[str, str], meta_rows: MetaRows
) -> tuple[Sequence[Mapping[str, str]], tuple[str, ...]]:
    """The meta of each task of one time: the request's `meta` or `meta_file`, else the
    phase rule's (as Go does); `[{}]` when none."""
    if request.meta and request.meta_file:
        raise BackloadError("meta", "meta and meta_file both given: use one only", status=400)
    if request.meta:
        return _request_meta(request.meta), ()
    if request.meta_file:
        return _read(meta_rows, workflow, request.meta_file), ()
    if "meta-file" in rule:
        note = f"meta-file {rule['meta-file']} of the phase rule"
        return _read(meta_rows, workflow, rule["meta-file"]), (note,)
    if "meta" in rule:
        try:
            return parse_meta(rule["meta"]), (f"meta {rule['meta']} of the phase rule",)
        except BatchError as err:
            raise BackloadError("meta", f"the phase rule's {err}") from None
    return [{}], ()


def _request_meta(meta: MetaObject) -> list[dict[str, str]]:
    """Go's meta object (`{"region": ["us", "eu"]}`; a string is a list of one), zipped by
    position into one item per index."""
    columns = {key: [value] if isinstance(value, str) else value for key, value in meta.items()}
    lengths = {key: len(values) for key, values in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{key}: {n}" for key, n in lengths.items())
        raise BackloadError("meta", f"meta lists differ in length ({detail})")
    bad = [key for key, n in lengths.items() if not n or not key or key in RESERVED_META]
    if bad:
        raise BackloadError("meta", f"meta {bad[0]!r}: no values, no key, or a key flowlord sets")
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _read(meta_rows: MetaRows, workflow: str, name: str) -> list[dict[str, str]]:
    if "\0" in name:  # no file has it in its name; os.path.realpath raises ValueError
        raise BackloadError("meta_file", f"meta-file={name!r}: not a file name")
    try:
        rows = meta_rows(workflow, name)
    except BatchError as err:
        raise BackloadError("meta_file", str(err)) from None
    if not rows:
        raise BackloadError("meta_file", f"meta-file={name}: has no rows")
    return rows


def _times(window: _Window, by: str, zone: tzinfo) -> list[tuple[datetime, str]]:
    """Each task time (`first`, then each step while not after `last`) with its RFC 3339
    text. By hour, the hour the clocks skip is no task (its info would name an hour that
    never was) and a repeated hour is one task."""
    times = steps(window.first, window.last, by)
    if by == "hour":
        times = [when for when in times if _exists(when)]
    if not times:
        raise BackloadError(window.field, f"no hour of {_describe(window, by, 1)} exists in "
                            f"{zone} (the clocks skip it)")  # fmt: skip
    try:
        return [(when, rfc3339(when)) for when in times]
    except ValueError as err:  # an old local mean time has a sub-minute offset
        raise BackloadError(window.field, f"{_describe(window, by, 1)}: {err}") from None


def _tasks(
    phase: Phase,
    template: str,
    times: Sequence[tuple[datetime, str]],
    items: Sequence[Mapping[str, str]],
    base: Mapping[str, str],
    *,
    created: str,
    new_id: Callable[[], str],
) -> tuple[Task, ...]:
    """One task per time and meta item; its meta is `base` with `cron` set to the task time
    (in the order a cron fire's has), then the item's; its template may use all of them."""
    tasks, size = [], 0
    for when, cron in times:
        for item in items:
            meta = {**base, "cron": cron, **item}
            try:
                info = render(template, when, meta)
            except TemplateError as err:
                raise BackloadError("template", f"template {template!r}: {err}") from None
            size += len(info) + len(encoded := encode_query(meta))
            if size > MAX_PLAN_CHARS:
                raise BackloadError(None, f"the tasks are over {MAX_PLAN_CHARS} characters of "
                                    "info and meta: backload less at a time")  # fmt: skip
            tasks.append(Task(type=phase.topic, job=phase.job, info=info, meta=encoded,
                              id=new_id(), created=created))  # fmt: skip
    return tuple(tasks)


def _exists(when: datetime) -> bool:
    """Whether this wall time happens in its zone (is not in the hour the clocks skip)."""
    try:
        there = when.astimezone(UTC).astimezone(when.tzinfo)
    except OverflowError:  # at the calendar's ends, where no zone changes its clocks
        return True
    return there.replace(tzinfo=None) == when.replace(tzinfo=None)


def _describe(window: _Window, by: str, items: int) -> str:
    first, last = window.first.isoformat(), window.last.isoformat()
    span = first if first == last else f"{first} to {last}"
    return f"{span} by {by}" + (f" with {items} meta items" if items > 1 else "")
