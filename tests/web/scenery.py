"""A dashboard with something to show: the workflows of `testdata/dashboard` (a nightly ETL,
an hourly billing roll-up, a 23-phase warehouse, a file with warnings and an unknown parent,
a file that does not parse) and a day of task records in every state, with alerts and a
paused workflow. Made through the stores' own transactions, as the taskmaster makes them."""

from __future__ import annotations

from flowlord import controls
from flowlord.state import SQLiteTaskStore, TaskRecord
from tests.conftest import TESTDATA, Clock
from tests.records import add_record, phase_task
from workflow.state import State

WORKFLOWS = TESTDATA / "dashboard"

RUNS = (
    ("etl.toml", "extract", State.COMPLETE, "", 340),
    ("etl.toml", "transform:orders", State.COMPLETE, "", 95),
    ("etl.toml", "transform:customers", State.COMPLETE, "", 61),
    ("etl.toml", "load:warehouse", State.FAILED, "warehouse: connection refused", 12),
    ("etl.toml", "extract", State.SENT, "", 0),
    ("billing.toml", "meter", State.COMPLETE, "", 20),
    ("billing.toml", "invoice", State.COMPLETE, "", 42),
    ("billing.toml", "ledger", State.WARNED, "3 rows skipped", 8),
    ("billing.toml", "meter", State.QUEUED, "", 0),
    ("warehouse.toml", "start", State.COMPLETE, "", 2),
    ("warehouse.toml", "source:crm", State.COMPLETE, "", 130),
    ("warehouse.toml", "source:shop", State.CANCELLED, "", 0),
    ("marketing.toml", "campaigns", State.HELD, "", 0),
)
"""(workflow, phase, end state, message, seconds it ran), oldest first, a minute apart."""


def arrange(store: SQLiteTaskStore, clock: Clock, db: str) -> list[TaskRecord]:
    """The records, alerts and pause of the scenery; returns the records as they end."""
    made = [_run(store, clock, n, *run) for n, run in enumerate(RUNS)]
    failed = next(r for r in made if r.state is State.FAILED)
    with store.transaction() as tx:
        tx.alert("failed", f"load:warehouse failed: {failed.msg}", workflow="etl.toml",
                 phase="load:warehouse", rec=failed.rec)  # fmt: skip
        tx.alert("phase_error", "marketing.toml: audience depends on segments, which no "
                 "phase runs", workflow="marketing.toml", phase="audience")  # fmt: skip
    with controls.known_phases(db) as phases_of:
        controls.pause(store, phases_of, "marketing.toml", reason="campaign freeze until Monday",
                       actor="maria@web")  # fmt: skip
    return made


def _run(store: SQLiteTaskStore, clock: Clock, n: int, workflow: str, phase: str,
         state: State, msg: str, seconds: int) -> TaskRecord:  # fmt: skip
    clock.advance(minutes=1)
    born = State.HELD if state is State.HELD else State.QUEUED
    record = add_record(store, phase_task(workflow, phase, f"run-{n:04d}"), workflow=workflow,
                        phase=phase, state=born)  # fmt: skip
    if state in (State.HELD, State.QUEUED):
        return record
    if state is State.CANCELLED:
        return _move(store, record.rec, state, reason="cancelled by hand", msg=msg)
    record = _move(store, record.rec, State.SENT, reason="sent")
    if state is State.SENT:
        return record
    started = clock()
    clock.advance(seconds=seconds)
    return _move(store, record.rec, state, reason="done", msg=msg, started=started)


def _move(store: SQLiteTaskStore, rec: int, state: State, **fields: object) -> TaskRecord:
    with store.transaction() as tx:
        return tx.move(rec, state, actor="test", **fields)  # type: ignore[arg-type]
