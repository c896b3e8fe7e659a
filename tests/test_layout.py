"""The layered layout (`workflow.layout`): depths, cycles, ordering, and scale without recursion."""

from __future__ import annotations

import random

import pytest

from workflow.layout import Layout, Placed, crossings, layered


def columns(layout: Layout) -> dict[str, int]:
    return {node: place.column for node, place in layout.places.items()}


def rows(layout: Layout) -> dict[str, int]:
    return {node: place.row for node, place in layout.places.items()}


def assert_grid(layout: Layout) -> None:
    """Every (column, row) is used once, rows are dense from 0, and the sizes match."""
    cells = [(p.column, p.row) for p in layout.places.values()]
    assert len(set(cells)) == len(cells)
    by_column: dict[int, list[int]] = {}
    for column, row in cells:
        by_column.setdefault(column, []).append(row)
    assert sorted(by_column) == list(range(layout.columns))
    for used in by_column.values():
        assert sorted(used) == list(range(len(used)))
    assert layout.rows == max((len(r) for r in by_column.values()), default=0)


def test_empty_graph() -> None:
    assert layered([], []) == Layout(places={}, columns=0, rows=0, back_edges=frozenset())


def test_chain_goes_left_to_right() -> None:
    layout = layered(["a", "b", "c"], [("a", "b"), ("b", "c")])
    assert layout.places == {"a": Placed(0, 0), "b": Placed(1, 0), "c": Placed(2, 0)}
    assert (layout.columns, layout.rows, layout.back_edges) == (3, 1, frozenset())


def test_diamond() -> None:
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    layout = layered(["a", "b", "c", "d"], edges)
    assert columns(layout) == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert rows(layout) == {"a": 0, "b": 0, "c": 1, "d": 0}
    assert (layout.columns, layout.rows) == (3, 2)


def test_column_is_the_longest_path_from_a_root() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")]
    assert columns(layered(["a", "b", "c", "d"], edges))["d"] == 3


def test_node_order_does_not_change_depths() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")]
    assert columns(layered(["d", "c", "b", "a"], edges)) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_duplicate_edges_are_fine() -> None:
    layout = layered(["a", "b"], [("a", "b"), ("a", "b")])
    assert columns(layout) == {"a": 0, "b": 1}
    assert layout.back_edges == frozenset()


def test_two_cycle_has_one_back_edge() -> None:
    layout = layered(["a", "b"], [("a", "b"), ("b", "a")])
    assert layout.back_edges == {("b", "a")}
    assert columns(layout) == {"a": 0, "b": 1}


def test_self_loop_is_a_back_edge_without_effect() -> None:
    layout = layered(["a", "b"], [("a", "a"), ("a", "b")])
    assert layout.back_edges == {("a", "a")}
    assert columns(layout) == {"a": 0, "b": 1}


def test_cycle_reachable_from_a_root_is_broken_where_it_closes() -> None:
    edges = [("r", "a"), ("a", "b"), ("b", "c"), ("c", "a")]
    layout = layered(["c", "b", "a", "r"], edges)  # roots are searched first anyway
    assert layout.back_edges == {("c", "a")}
    assert columns(layout) == {"r": 0, "a": 1, "b": 2, "c": 3}
    assert_grid(layout)


def test_cycle_without_a_root_still_places_every_node() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("x", "y"), ("y", "x")]
    layout = layered(["a", "b", "c", "x", "y"], edges)
    assert layout.back_edges == {("c", "a"), ("y", "x")}
    assert columns(layout) == {"a": 0, "b": 1, "c": 2, "x": 0, "y": 1}
    assert_grid(layout)


def test_disconnected_components_share_columns() -> None:
    layout = layered(["a", "b", "x", "lone"], [("a", "b"), ("x", "b")])
    assert columns(layout) == {"a": 0, "b": 1, "x": 0, "lone": 0}
    assert rows(layout) == {"a": 0, "x": 1, "lone": 2, "b": 0}
    assert (layout.columns, layout.rows) == (2, 3)


@pytest.mark.parametrize("edge", [("a", "ghost"), ("ghost", "a")])
def test_unknown_node_is_refused_by_name(edge: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="ghost"):
        layered(["a"], [edge])


def test_node_listed_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'a'"):
        layered(["a", "b", "a"], [])


def test_barycenter_untangles_a_reversed_matching() -> None:
    nodes = ["a0", "a1", "a2", "b0", "b1", "b2"]
    edges = [("a0", "b2"), ("a1", "b1"), ("a2", "b0")]
    assert crossings(layered(nodes, edges, sweeps=0), edges) == 3
    assert crossings(layered(nodes, edges), edges) == 0


def test_barycenter_reduces_crossings_over_three_columns() -> None:
    nodes = ["r1", "r2", "m1", "m2", "m3", "l1", "l2", "l3"]
    edges = [
        ("r1", "m3"), ("r2", "m1"), ("r2", "m2"),
        ("m1", "l3"), ("m2", "l2"), ("m3", "l1"),
    ]  # fmt: skip
    before = crossings(layered(nodes, edges, sweeps=0), edges)
    after = crossings(layered(nodes, edges), edges)
    assert before > 0
    assert after < before


def test_sweeps_never_leave_more_crossings_than_they_found() -> None:
    """Plain barycenter sweeps tangle this untangled graph (0 -> 1 crossing); the best order
    seen is kept."""
    nodes = [f"n{i}" for i in range(7)]
    pairs = [(0, 1), (0, 6), (1, 5), (1, 6), (2, 4), (2, 5), (4, 6)]
    edges = [(f"n{u}", f"n{v}") for u, v in pairs]
    assert crossings(layered(nodes, edges, sweeps=0), edges) == 0
    assert crossings(layered(nodes, edges), edges) == 0


def test_node_without_neighbours_keeps_its_slot() -> None:
    layout = layered(["a", "z", "b", "c", "d"], [("a", "d"), ("b", "c")])
    assert rows(layout) == {"a": 0, "z": 1, "b": 2, "d": 0, "c": 1}


def test_crossings_counts_only_strict_crossings() -> None:
    layout = layered(["a", "b", "c", "d"], [("a", "c"), ("a", "d"), ("b", "c")], sweeps=0)
    assert rows(layout) == {"a": 0, "b": 1, "c": 0, "d": 1}
    assert crossings(layout, [("a", "c"), ("a", "d"), ("b", "c")]) == 1
    assert crossings(layout, [("a", "c"), ("b", "c"), ("b", "c")]) == 0


def test_crossings_refuses_unknown_nodes() -> None:
    with pytest.raises(ValueError, match="nope"):
        crossings(layered(["a"], []), [("a", "nope")])


def random_dag(seed: int, size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Edges only from a lower to a higher number, so the numbers are a topological order."""
    rng = random.Random(seed)
    nodes = [f"n{i}" for i in range(size)]
    edges = [
        (f"n{i}", f"n{j}")
        for j in range(1, size)
        for i in rng.sample(range(j), k=min(j, rng.randint(0, 3)))
    ]
    return nodes, edges


def longest_paths(size: int, edges: list[tuple[str, str]]) -> dict[str, int]:
    """Depths by dynamic programming over the numbering (independent of the module)."""
    parents: dict[int, list[int]] = {}
    for u, v in edges:
        parents.setdefault(int(v[1:]), []).append(int(u[1:]))
    depth = [0] * size
    for j in range(size):
        depth[j] = max((depth[i] + 1 for i in parents.get(j, ())), default=0)
    return {f"n{j}": depth[j] for j in range(size)}


def test_random_dag_of_500_nodes() -> None:
    nodes, edges = random_dag(seed=7, size=500)
    shuffled = random.Random(1).sample(nodes, k=len(nodes))
    layout = layered(shuffled, edges)
    assert layout.back_edges == frozenset()
    assert columns(layout) == longest_paths(500, edges)
    assert_grid(layout)


def test_same_input_same_layout() -> None:
    nodes, edges = random_dag(seed=3, size=200)
    edges += [("n150", "n10"), ("n99", "n99")]
    first = layered(nodes, edges)
    assert layered(list(nodes), list(edges)) == first
    assert ("n99", "n99") in first.back_edges
    assert_grid(first)


def test_back_edges_leave_a_layered_dag() -> None:
    nodes, edges = random_dag(seed=11, size=300)
    rng = random.Random(5)
    edges += [(f"n{rng.randrange(150, 300)}", f"n{rng.randrange(0, 150)}") for _ in range(40)]
    layout = layered(nodes, edges)
    assert layout.back_edges
    place = layout.places
    for u, v in edges:
        if (u, v) in layout.back_edges:
            assert place[u].column >= place[v].column
        else:
            assert place[u].column < place[v].column
    assert_grid(layout)


def test_long_chain_does_not_recurse() -> None:
    size = 5000
    nodes = [f"n{i}" for i in range(size)]
    edges = [(nodes[i], nodes[i + 1]) for i in range(size - 1)]
    layout = layered(list(reversed(nodes)), edges)
    assert columns(layout) == {f"n{i}": i for i in range(size)}
    assert (layout.columns, layout.rows) == (size, 1)


def test_long_cycle_does_not_recurse() -> None:
    size = 5000
    nodes = [f"n{i}" for i in range(size)]
    edges = [(nodes[i], nodes[(i + 1) % size]) for i in range(size)]
    layout = layered(nodes, edges)
    assert layout.back_edges == {(nodes[-1], nodes[0])}
    assert columns(layout) == {f"n{i}": i for i in range(size)}
