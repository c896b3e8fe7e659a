"""Children chains (`workflow.chains`): who starts whom, as a tree, bounded and cycle-safe."""

from __future__ import annotations

import pytest

from workflow import Phase
from workflow.chains import ChainNode, Family, children_chain


def phase(task: str, depends_on: str = "", rule: str = "") -> Phase:
    return Phase(
        task=task, depends_on=depends_on, rule=rule or ("" if depends_on else "cron=@daily")
    )


def shape(nodes: tuple[ChainNode, ...]) -> list[object]:
    """A chain as nested lists, marks in the names: `x (cycle)`, `x (truncated)`."""
    out: list[object] = []
    for node in nodes:
        mark = " (cycle)" if node.cycle else " (truncated)" if node.truncated else ""
        out.append(f"{node.task}{mark}")
        if node.children:
            out.append(shape(node.children))
    return out


def size(nodes: tuple[ChainNode, ...]) -> int:
    return sum(1 + size(node.children) for node in nodes)


def truncated(nodes: tuple[ChainNode, ...]) -> int:
    return sum(node.truncated + truncated(node.children) for node in nodes)


ETL = [
    phase("extract"),
    phase("transform:orders", "extract"),
    phase("transform:customers", "extract"),
    phase("load:warehouse", "transform:orders"),
    phase("audit", "transform"),
]


def test_chain_follows_topic_and_job_qualified_parents_in_file_order() -> None:
    assert shape(children_chain(ETL, "extract")) == [
        "transform:orders", ["load:warehouse", "audit"],
        "transform:customers", ["audit"],
    ]  # fmt: skip


def test_job_qualified_depends_on_names_one_task_only() -> None:
    assert shape(children_chain(ETL, "transform:customers")) == ["audit"]
    assert shape(children_chain(ETL, "transform:orders")) == ["load:warehouse", "audit"]


@pytest.mark.parametrize(
    ("child", "parent", "expected"),
    [
        (phase("c", "t"), phase("t:1"), True),  # a topic is met by any phase of it
        (phase("c", "t"), phase("t"), True),
        (phase("c", "t:1"), phase("t:1"), True),
        (phase("c", "t:1"), phase("t:2"), False),  # topic:job only by that exact task
        (phase("c", "t:1"), phase("t"), False),
        (phase("c", "t:1"), phase("t", rule="cron=@daily&job=1"), True),  # the rule's job
        (phase("c", "u"), phase("t"), False),
        (phase("c"), phase("t"), False),
    ],
)
def test_which_parent_a_depends_on_names(child: Phase, parent: Phase, expected: bool) -> None:
    assert (Family([parent, child]).children(parent) == [child]) is expected


def test_unknown_task_and_leaf_have_no_chain() -> None:
    assert children_chain(ETL, "nowhere") == ()
    assert children_chain(ETL, "load:warehouse") == ()
    assert children_chain([], "extract") == ()


def test_a_cycle_is_shown_once_and_not_followed() -> None:
    phases = [
        phase("root"),
        phase("a:2", "root"),
        phase("b:1", "a"),  # a child of a:1 and of a:2
        phase("a:1", "b"),  # a → b → a
    ]
    assert shape(children_chain(phases, "root")) == ["a:2", ["b:1", ["a:1", ["b:1 (cycle)"]]]]


def test_a_phase_depending_on_its_own_topic_is_its_own_child() -> None:
    phases = [phase("x:1", "x"), phase("x:2", "x")]
    assert shape(children_chain(phases, "x:1")) == [
        "x:1 (cycle)", "x:2", ["x:1 (cycle)", "x:2 (cycle)"],
    ]  # fmt: skip


def test_depth_is_bounded() -> None:
    line = [phase("p0")] + [phase(f"p{i}", f"p{i - 1}") for i in range(1, 51)]
    nodes = children_chain(line, "p0", max_depth=3)
    assert shape(nodes) == ["p1", ["p2", ["p3 (truncated)"]]]
    deepest = children_chain(line, "p0")
    for _ in range(31):
        (deepest,) = (node.children for node in deepest)
    assert [(n.task, n.truncated) for n in deepest] == [("p32", True)]


def test_node_count_is_bounded_when_topics_fan_out() -> None:
    """Four layers of ten phases, each depending on the previous layer's topic: 10,000
    paths. The tree stops at the budget instead."""
    phases = [phase("root")]
    for layer in range(1, 5):
        parent = f"t{layer - 1}" if layer > 1 else "root"
        phases += [phase(f"t{layer}:{n}", parent) for n in range(10)]
    nodes = children_chain(phases, "root", max_nodes=250)
    assert 200 < size(nodes) <= 250
    assert truncated(nodes) and [n.truncated for n in nodes][-1]
    assert 900 < size(children_chain(phases, "root")) <= 1000


def test_family_serves_many_chains_of_one_file() -> None:
    family = Family(ETL)
    assert family.chain("extract") == children_chain(ETL, "extract")
    assert [p.task for p in family.children(ETL[0])] == ["transform:orders", "transform:customers"]
