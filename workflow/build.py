"""The tasks one phase starts: its batch rules expanded, its template rendered per item.

Cron fires, files rules and completed parents all start phases the same way; only the meta
they bring and how ids are given differ (a child keeps its parent's run id).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from workflow.batch import BatchError, expand
from workflow.phase import PhaseRecord
from workflow.query import encode_query, parse_query
from workflow.task import Task, rfc3339
from workflow.template import render

CRON_META_KEYS = frozenset({"workflow", "cron"})
FILE_META_KEYS = frozenset({"workflow", "file", "filename"})
"""Meta keys a cron task and a files-rule task carry (both also `job` when the phase has one);
validation checks templates against them."""

MetaRows = Callable[[str, str], list[dict[str, str]]]
"""Reads a rule's `meta-file` for (workflow key, name): the taskmaster's I/O, passed in."""


def phase_tasks(
    phase: PhaseRecord,
    when: datetime,
    *,
    meta: Mapping[str, str],
    new_id: Callable[[], str],
    created: datetime,
    meta_rows: MetaRows | None,
    max_tasks: int,
    template_meta: Mapping[str, str] | None = None,
) -> list[Task]:
    """One task per batch item of `phase` at task time `when`.

    Each task's meta is `meta` plus the item's meta; its template is rendered with
    `template_meta` (extra keys a template may use, such as a parent's meta) overlaid by that.
    Raises `BatchError` or `TemplateError` for a phase that cannot make its tasks.
    """
    rule = parse_query(phase.rule)
    rows = None
    if "meta-file" in rule:
        if meta_rows is None:
            raise BatchError("meta-file", "meta-file: no folder to read it from")
        rows = meta_rows(phase.file_path, rule["meta-file"])
    tasks = []
    for item in expand(rule, when, meta_rows=rows, max_tasks=max_tasks):
        task_meta = {**meta, **item.meta}
        tasks.append(
            Task(
                type=phase.topic,
                job=phase.job,
                info=render(phase.template, item.when, {**(template_meta or {}), **task_meta}),
                meta=encode_query(task_meta),
                id=new_id(),
                created=rfc3339(created),
            )
        )
    return tasks
