"""Task records arranged by a test, one transaction each, as the taskmaster would make them."""

from __future__ import annotations

from flowlord.state import NewRecord, TaskFilter, TaskRecord, TaskStore
from workflow import Task
from workflow.state import Origin, State


def add_record(
    store: TaskStore, task: Task, *, workflow: str, phase: str, state: State
) -> TaskRecord:
    """One record of `task` (origin cron, a fresh origin key) in `state`."""
    key = f"test|{len(store.tasks(TaskFilter(limit=100_000)))}"
    reason = "held: made by the test" if state is State.HELD else "made by the test"
    with store.transaction() as tx:
        [record] = tx.add(
            [NewRecord(task=task, workflow=workflow, phase=phase, origin=Origin.CRON,
                       origin_key=key, state=state)],
            actor="test", reason=reason,
        )  # fmt: skip
    if record is None:
        raise AssertionError(f"record of {task.type} was not made (origin key {key} taken)")
    return record


def phase_task(workflow: str, phase: str, task_id: str) -> Task:
    """The task of a stored phase name (`topic` or `topic:job`) in `workflow`."""
    task_type, _, job = phase.partition(":")
    return Task(type=task_type, job=job, id=task_id, meta=f"workflow={workflow}")
