"""`require=` rules: what a child phase waits for before it starts.

Two forms, both kept and mixable in one comma-separated list:
- `{meta:KEY}` (the Go flowlord's form): the parent's meta must have a non-empty `KEY`;
- `topic` or `topic:job` (a fan-in): that task of the same run must have completed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache

_META = re.compile(r"\{meta:([^{}]+)\}")


@dataclass(frozen=True, slots=True)
class Requirement:
    """A parsed `require=` value: meta keys the parent must carry, tasks that must be done."""

    meta_keys: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()

    def met(self, parent_meta: Mapping[str, str], completed: Collection[str]) -> bool:
        """True when every named meta key is non-empty and every named task completed."""
        return all(parent_meta.get(key) for key in self.meta_keys) and all(
            satisfied(task, completed) for task in self.tasks
        )

    def names(self, task: str) -> bool:
        """Whether completing `task` (a `topic:job` or `topic` name) counts towards this."""
        return any(satisfied(required, {task}) for required in self.tasks)


@lru_cache(maxsize=4096)
def parse_require(text: str) -> Requirement:
    """Parse a `require=` value; ValueError naming the item for one that is neither form.

    Memoized (the value is immutable): it is read for every child of every done task."""
    meta_keys: list[str] = []
    tasks: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        match = _META.fullmatch(item)
        if match:
            meta_keys.append(match.group(1))
        elif "{" in item or "}" in item or item.startswith(":") or item.endswith(":"):
            raise ValueError(f"{item!r} is neither {{meta:KEY}} nor topic[:job]")
        else:
            tasks.append(item)
    return Requirement(tuple(meta_keys), tuple(tasks))


def satisfied(name: str, completed: Collection[str]) -> bool:
    """`topic` is met by any completed task of that topic; `topic:job` only by that task."""
    if ":" in name:
        return name in completed
    return any(done.partition(":")[0] == name for done in completed)
