"""What a person does to task records: retry one, cancel one. The CLI and the API share these.

Neither needs the leader lease: they write records, and the leader sends what is queued at
its next turn (a cancelled record is never sent; its done, if one comes, changes nothing).
"""

from __future__ import annotations

from flowlord.state import NewRecord, StoreError, TaskRecord, TaskStore
from workflow.state import ENDS, Origin, State


def retry(store: TaskStore, rec: int, *, actor: str) -> TaskRecord:
    """A new attempt of a finished record (origin `manual`), queued to be sent.

    Raises `UnknownRecord`, or `StoreError` for a record that is not finished yet or that
    has a later attempt already (an automatic retry, or a retry asked before): only the
    latest attempt of a task is retried, so a retry asked twice makes one attempt.
    """
    with store.transaction() as tx:
        record = tx.get(rec)
        if record.state not in ENDS:
            raise StoreError(
                f"record {rec} is {record.state.value}: only a finished record can be retried "
                "(cancel it first)"
            )
        attempts = [
            r for r in store.run(record.id)
            if (r.type, r.job, r.info) == (record.type, record.job, record.info)
        ]  # fmt: skip
        latest = max(attempts, key=lambda r: (r.attempt, r.rec))
        if latest.attempt > record.attempt:
            raise StoreError(f"record {rec} was retried already: its attempt {latest.attempt} "
                             f"is record {latest.rec}")  # fmt: skip
        attempt = latest.attempt + 1
        task = record.task().with_meta(retry=str(attempt))
        [new] = tx.add(
            [NewRecord(
                task=task, workflow=record.workflow, phase=record.phase, attempt=attempt,
                origin=Origin.MANUAL, origin_key=f"manual|{rec}|{attempt}", state=State.QUEUED,
            )],
            actor=actor, reason=f"retry of record {rec}",
        )  # fmt: skip
        if new is None:
            raise StoreError(f"record {rec} was retried already as attempt {attempt}")
        return new


def cancel(store: TaskStore, rec: int, *, actor: str, reason: str) -> TaskRecord:
    """Cancel a record that is not finished (`IllegalTransition` for one that is)."""
    with store.transaction() as tx:
        return tx.move(rec, State.CANCELLED, actor=actor, reason=reason or "cancelled")
