"""A layered (Sugiyama-style) layout of a directed graph, left to right by depth.

Three steps, all iterative so that a long chain never meets the recursion limit:

1. Cycles are broken by a depth-first search: from the roots first, then from every node not
   yet reached, each in the given node order; an edge to a node still on the search stack is
   a *back edge*. Back edges always point to an ancestor in the search tree, so reversing
   them adds nothing to the depths: they are simply left out of layering (and drawn apart).
2. Each node's column is the longest path to it from any root over the remaining DAG.
3. Rows within each column follow the barycenter heuristic: down and up sweeps sort each
   column by the mean row of its neighbours in the columns before (or after) it; a node with
   no such neighbour keeps its slot, ties keep the previous order. Sweeps can oscillate, so
   the order with the fewest crossings seen (the first one on ties) is kept.

Pure and deterministic: the same nodes and edges, in the same order, give the same layout.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Edge = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Placed:
    """Where one node sits: its depth and its position within that column."""

    column: int
    row: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Every node's place, the grid's size and the edges reversed to break cycles."""

    places: dict[str, Placed]
    columns: int
    rows: int
    back_edges: frozenset[Edge]


def layered(nodes: Sequence[str], edges: Sequence[Edge], *, sweeps: int = 4) -> Layout:
    """Lay out `nodes` (in a stable order, e.g. file order) joined by `(parent, child)`
    edges. Self-loops and duplicate edges are allowed; an edge naming a node not in `nodes`,
    or a node listed twice, is a `ValueError`."""
    known = _known(nodes)
    pairs = _checked(edges, known)
    back = _back_edges(nodes, pairs)
    forward = [edge for edge in pairs if edge not in back]
    column = _longest_paths(nodes, forward)
    # Back edges are drawn too, so they count for the ordering, oriented left to right.
    links = list(dict.fromkeys(forward + [(v, u) for u, v in back if u != v]))
    grid = _ordered(_by_column(nodes, column), links, column, sweeps=sweeps)
    places = {
        node: Placed(c, r) for c, members in enumerate(grid) for r, node in enumerate(members)
    }
    return Layout(
        places={node: places[node] for node in nodes},
        columns=len(grid),
        rows=max((len(members) for members in grid), default=0),
        back_edges=back,
    )


def crossings(layout: Layout, edges: Iterable[Edge]) -> int:
    """How many pairs of edges between adjacent columns cross (sharing an end is no
    crossing). Longer edges and self-loops are not counted; duplicates count once."""
    places = layout.places
    for node in (n for edge in edges for n in edge):
        if node not in places:
            raise ValueError(f"edge names unknown node: {node!r}")
    oriented = {_left_to_right(places[u], places[v]) for u, v in edges}
    return _count_crossings(oriented)


def _known(nodes: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for node in nodes:
        if node in known:
            raise ValueError(f"node listed twice: {node!r}")
        known.add(node)
    return known


def _checked(edges: Sequence[Edge], known: set[str]) -> list[Edge]:
    """The distinct edges in their first order; unknown endpoints are refused."""
    for edge in edges:
        for node in edge:
            if node not in known:
                raise ValueError(f"edge {edge!r} names unknown node: {node!r}")
    return list(dict.fromkeys((u, v) for u, v in edges))


_NEW, _OPEN, _DONE = 0, 1, 2


def _back_edges(nodes: Sequence[str], pairs: list[Edge]) -> frozenset[Edge]:
    """The edges closing a cycle in an iterative depth-first search (roots first)."""
    children: dict[str, list[str]] = defaultdict(list)
    for u, v in pairs:
        children[u].append(v)
    has_parent = {v for u, v in pairs if u != v}
    starts = [n for n in nodes if n not in has_parent] + list(nodes)
    state = dict.fromkeys(nodes, _NEW)
    back: set[Edge] = set()
    for start in starts:
        if state[start] != _NEW:
            continue
        state[start] = _OPEN
        stack = [(start, iter(children[start]))]
        while stack:
            node, pending = stack[-1]
            for kid in pending:
                if state[kid] == _OPEN:
                    back.add((node, kid))
                elif state[kid] == _NEW:
                    state[kid] = _OPEN
                    stack.append((kid, iter(children[kid])))
                    break
            else:
                state[node] = _DONE
                stack.pop()
    return frozenset(back)


def _longest_paths(nodes: Sequence[str], dag: list[Edge]) -> dict[str, int]:
    """Each node's longest path from a root, by a topological pass over the DAG."""
    children: dict[str, list[str]] = defaultdict(list)
    waiting = dict.fromkeys(nodes, 0)
    for u, v in dag:
        children[u].append(v)
        waiting[v] += 1
    column = dict.fromkeys(nodes, 0)
    ready = deque(n for n in nodes if waiting[n] == 0)
    while ready:
        node = ready.popleft()
        for kid in children[node]:
            column[kid] = max(column[kid], column[node] + 1)
            waiting[kid] -= 1
            if waiting[kid] == 0:
                ready.append(kid)
    return column


def _by_column(nodes: Sequence[str], column: Mapping[str, int]) -> list[list[str]]:
    grid: list[list[str]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for node in nodes:
        grid[column[node]].append(node)
    return grid


def _ordered(
    grid: list[list[str]], links: list[Edge], column: Mapping[str, int], *, sweeps: int
) -> list[list[str]]:
    """The grid after `sweeps` down-and-up barycenter sweeps, or the best order seen."""
    before: dict[str, list[str]] = defaultdict(list)
    after: dict[str, list[str]] = defaultdict(list)
    for u, v in links:
        after[u].append(v)
        before[v].append(u)
    row = {node: r for members in grid for r, node in enumerate(members)}
    best, fewest = [list(m) for m in grid], _grid_crossings(links, column, row)
    for _ in range(sweeps):
        for c in range(1, len(grid)):
            grid[c] = _barycentered(grid[c], before, row)
        for c in range(len(grid) - 2, -1, -1):
            grid[c] = _barycentered(grid[c], after, row)
        count = _grid_crossings(links, column, row)
        if count < fewest:
            best, fewest = [list(m) for m in grid], count
    return best


def _barycentered(
    members: list[str], neighbours: Mapping[str, list[str]], row: dict[str, int]
) -> list[str]:
    """`members` sorted by the mean row of their neighbours; nodes without one keep their
    slot. Updates `row` for the new order."""
    slots: list[int] = []
    keyed: list[tuple[float, int, str]] = []
    for index, node in enumerate(members):
        around = neighbours.get(node)
        if around:
            slots.append(index)
            keyed.append((sum(row[n] for n in around) / len(around), index, node))
    result = list(members)
    for slot, (_, _, node) in zip(slots, sorted(keyed), strict=True):
        result[slot] = node
    for index, node in enumerate(result):
        row[node] = index
    return result


def _grid_crossings(links: list[Edge], column: Mapping[str, int], row: Mapping[str, int]) -> int:
    return _count_crossings(
        {_left_to_right(Placed(column[u], row[u]), Placed(column[v], row[v])) for u, v in links}
    )


def _left_to_right(a: Placed, b: Placed) -> tuple[int, int, int] | None:
    """`(left column, left row, right row)` for an edge between adjacent columns, else None."""
    if a.column > b.column:
        a, b = b, a
    if b.column - a.column != 1:
        return None
    return (a.column, a.row, b.row)


def _count_crossings(oriented: set[tuple[int, int, int] | None]) -> int:
    """Inversions of right rows among edges sorted by (column, left row, right row): an
    earlier edge crosses a later one of the same column pair when it ends strictly lower."""
    total = 0
    by_column: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for edge in oriented:
        if edge is not None:
            by_column[edge[0]].append((edge[1], edge[2]))
    for pairs in by_column.values():
        seen: list[int] = []
        for _, right in sorted(pairs):
            total += len(seen) - bisect_right(seen, right)
            insort(seen, right)
    return total
