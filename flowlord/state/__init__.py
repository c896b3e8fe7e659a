"""Task state: records, transitions, alerts, cron marks and the leader lease (DESIGN §4).

`TaskStore` is the interface; `MemoryTaskStore` the reference, `SQLiteTaskStore` the durable
store in the cache's database file. One contract suite runs on both.
"""

from flowlord.state.memory import MemoryTaskStore
from flowlord.state.protocol import (
    ALERT_KINDS,
    EVERY_TASK,
    Alert,
    CorruptRecord,
    Lease,
    LeaseLost,
    NewRecord,
    Stats,
    StoreError,
    TaskFilter,
    TaskRecord,
    TaskStore,
    Transition,
    Tx,
    UnknownRecord,
)
from flowlord.state.sqlite import SQLiteTaskStore

__all__ = [
    "ALERT_KINDS",
    "EVERY_TASK",
    "Alert",
    "CorruptRecord",
    "Lease",
    "LeaseLost",
    "MemoryTaskStore",
    "NewRecord",
    "SQLiteTaskStore",
    "Stats",
    "StoreError",
    "TaskFilter",
    "TaskRecord",
    "TaskStore",
    "Transition",
    "Tx",
    "UnknownRecord",
]
