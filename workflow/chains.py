"""Children chains: every phase that runs after one phase completes, directly or through
others, as a tree (the Go flowlord's `/info` "Child" lists, without their gaps).

A child is matched as the resolver matches it at run time (DESIGN §1): a `dependsOn` of
`topic` is satisfied by any phase of that topic in the file, `topic:job` only by that exact
task. So a phase may have several parents, and a file may hold a cycle (`a → b → a`, or
`x:1` depending on its own topic `x`) that validation accepts: it simply never runs. The tree
shows a phase met again on its own path once, marked `cycle`, and stops growing past a depth
and a node budget (`truncated`): topic-wide dependencies can fan out exponentially.

Pure: the caller passes the phases of one file, in file order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from workflow.phase import Phase

MAX_DEPTH = 32
"""Levels below the phase asked about; deeper descendants are cut (`truncated`)."""
MAX_NODES = 1000
"""Nodes in one tree below its first level (always shown whole); a node whose children would
exceed it is cut (`truncated`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainNode:
    """One descendant: its stored task and its own children, in file order.

    `cycle`: the task is already on the path from the root, so it is not expanded again.
    `truncated`: it has children that the depth or node bound left out.
    """

    task: str
    children: tuple[ChainNode, ...] = ()
    cycle: bool = False
    truncated: bool = False


def children_chain(
    phases: Sequence[Phase],
    task: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> tuple[ChainNode, ...]:
    """The descendants of the phase `task` of this file, as a tree; `()` when it has none or
    is not among `phases`."""
    return Family(phases).chain(task, max_depth=max_depth, max_nodes=max_nodes)


def _qualified(phase: Phase) -> str:
    """The `topic:job` a qualified `dependsOn` must equal to name this phase."""
    return f"{phase.topic}:{phase.job}" if phase.job else phase.task


class Family:
    """The phases of one file indexed by what they depend on, so that the chains of many of
    its phases cost one pass over the file."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        self._phases = {p.task: p for p in phases}
        self._position = {p.task: i for i, p in enumerate(phases)}
        self._by_parent: dict[str, list[Phase]] = defaultdict(list)
        for phase in phases:
            if phase.depends_on:
                self._by_parent[phase.depends_on].append(phase)

    def chain(
        self, task: str, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES
    ) -> tuple[ChainNode, ...]:
        """The descendants of `task` (see `children_chain`)."""
        root = self._phases.get(task)
        if root is None:
            return ()
        return _Tree(self, max_depth=max_depth, max_nodes=max_nodes).grow(root)

    def children(self, parent: Phase) -> list[Phase]:
        """The phases `parent` starts, in file order (by topic and by exact task, merged)."""
        found = list(self._by_parent.get(parent.topic, ()))
        qualified = _qualified(parent)
        if qualified != parent.topic:
            found += self._by_parent.get(qualified, ())
        return sorted(found, key=lambda p: self._position[p.task])


class _Tree:
    """One tree being grown, with what is left of its node budget."""

    def __init__(self, family: Family, *, max_depth: int, max_nodes: int) -> None:
        self._family = family
        self._max_depth = max_depth
        self._left = max_nodes

    def grow(self, root: Phase) -> tuple[ChainNode, ...]:
        kids = self._family.children(root)
        self._left -= len(kids)  # the first level is always shown whole
        path = frozenset({root.task})
        return tuple(self._node(kid, path, depth=1) for kid in kids)

    def _node(self, phase: Phase, path: frozenset[str], depth: int) -> ChainNode:
        if phase.task in path:
            return ChainNode(task=phase.task, cycle=True)
        kids = self._family.children(phase)
        if not kids:
            return ChainNode(task=phase.task)
        if not self._affords(kids, depth=depth + 1):
            return ChainNode(task=phase.task, truncated=True)
        below = path | {phase.task}
        children = tuple(self._node(kid, below, depth + 1) for kid in kids)
        return ChainNode(task=phase.task, children=children)

    def _affords(self, kids: Sequence[Phase], *, depth: int) -> bool:
        """Take `kids` from the budget if the bounds allow this level whole."""
        if depth > self._max_depth or len(kids) > self._left:
            return False
        self._left -= len(kids)
        return True
