"""The peers' task functions for bench/worker_bench.py, in a module of their own.

A peer's worker process imports its tasks by module name (`huey_consumer
worker_bench_peers.huey`, `rq worker` with the job `worker_bench_peers.rq_b`), and the bench
must enqueue them under that same name, so neither side can use the bench script itself (run
as `__main__`). `WORKER_BENCH_HOME` names the bench's temp folder: the huey database lives
there, and the last step of each chain appends its chain id, one line with one write, to
`peers.log` in it, which the bench tails with inotify (as it tails flowlord's done topic).
Imports only the standard library, and huey only when `WORKER_BENCH_PEER=huey`: an RQ work
horse imports this module for each job, and must not pay for huey.
"""

from __future__ import annotations

import os

HOME = os.environ.get("WORKER_BENCH_HOME", "")
SIGNAL = "peers.log"
_APPEND = os.O_APPEND | os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC


def signal(chain_id: str) -> None:
    """Tell the bench this chain is done: one line, one `write`."""
    fd = os.open(os.path.join(HOME, SIGNAL), _APPEND, 0o644)
    try:
        os.write(fd, f"{chain_id}\n".encode())
    finally:
        os.close(fd)


def rq_a(chain_id: str) -> str:
    return chain_id


def rq_b(chain_id: str) -> None:
    signal(chain_id)


huey = None
if HOME and os.environ.get("WORKER_BENCH_PEER") == "huey":  # the database in the temp folder
    try:
        from huey import SqliteHuey
    except ImportError:
        pass
    else:
        huey = SqliteHuey("worker-bench", filename=os.path.join(HOME, "huey.db"), fsync=True)

        @huey.task()
        def huey_a(chain_id: str) -> str:
            return chain_id

        @huey.task()
        def huey_b(chain_id: str) -> None:
            signal(chain_id)
