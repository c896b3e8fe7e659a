"""The `Cache` interface every workflow cache implements, and the lookup rules they share."""

from __future__ import annotations

from typing import Protocol

from workflow import Phase, PhaseRecord, Task

ALL_WORKFLOWS = "*"


class Cache(Protocol):
    """Read access to loaded workflows; `refresh()` brings it in line with the files."""

    def search(self, task: str, job: str = "") -> tuple[str, Phase]:
        """First phase (by file key, then file order) of topic `task` (and `job`, if given)."""
        ...

    def get(self, t: Task) -> PhaseRecord:
        """The phase a task belongs to, via meta `workflow=` (`*`: any file) and its job."""
        ...

    def children(self, t: Task) -> list[Phase]:
        """Phases of the task's workflow file that depend on it, in file order."""
        ...

    def refresh(self) -> list[str]:
        """Load changed files; return their keys (removed ones prefixed `-`).

        Raises `RefreshError` after loading the good files if any file failed.
        """
        ...

    def is_dir(self) -> bool:
        """True when the workflow path is a folder (loaded recursively)."""
        ...

    def close(self) -> None:
        """Release what the cache holds (watcher, database)."""
        ...


def task_target(t: Task) -> tuple[str, str]:
    """The workflow key and job a task names: job from `t.job`, else meta `job=`."""
    meta = t.meta_values()
    return meta.get("workflow", ""), t.job or meta.get("job", "")


def parent_names(t: Task, job: str) -> tuple[str, ...]:
    """The `depends_on` values that make a phase a child of `t`: its topic, or `topic:job`."""
    return (t.type, f"{t.type}:{job}") if job else (t.type,)
