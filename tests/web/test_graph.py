"""The dependency graph SVG (`handlers.web.graph`), read back as XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import combinations
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from handlers.web.graph import NAME_CHARS, workflow_graph
from workflow.chains import Family
from workflow.phase import PhaseRecord

SVG = "{http://www.w3.org/2000/svg}"
NEW_YORK = ZoneInfo("America/New_York")


def phase(task: str, depends_on: str = "", rule: str = "", status: str = "") -> PhaseRecord:
    return PhaseRecord(
        task=task,
        depends_on=depends_on,
        rule=rule or ("" if depends_on else "cron=0 6 * * *"),
        file_path="etl.toml",
        status=status,
    )


def render(phases: Sequence[PhaseRecord], **options: Any) -> ET.Element:
    options.setdefault("next_fires", {})
    options.setdefault("zone", UTC)
    return ET.fromstring(workflow_graph(phases, **options))


def nodes(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class", "").split()[:1] == ["node"]]


def phase_nodes(root: ET.Element) -> dict[str, ET.Element]:
    found = [g for g in nodes(root) if g.get("data-task") is not None]
    by_task = {g.get("data-task", ""): g for g in found}
    assert len(by_task) == len(found)
    return by_task


def edges(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split()]


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def texts(element: ET.Element, kind: str) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text") if t.get("class") == kind]


def title(element: ET.Element) -> str:
    found = element.find(f"{SVG}title")
    assert found is not None
    return found.text or ""


def box(element: ET.Element) -> tuple[float, float, float, float]:
    rect = next(r for r in element.iter(f"{SVG}rect") if r.get("class") == "box")
    x, y, width, height = (float(rect.get(k, "")) for k in ("x", "y", "width", "height"))
    return x, y, width, height


ETL = [
    phase("extract"),
    phase("transform:orders", "extract"),
    phase("transform:customers", "extract"),
    phase("load", "transform"),
    phase("audit", "transform:orders"),
    phase("report", "load", rule="files=/out/*.csv"),
]


def test_every_phase_has_exactly_one_node() -> None:
    root = render(ETL)
    counts = Counter(g.get("data-task") for g in nodes(root))
    assert counts == Counter(p.task for p in ETL)


def test_edges_are_the_resolvers_children() -> None:
    family = Family(ETL)
    expected = {(p.task, kid.task) for p in ETL for kid in family.children(p)}
    drawn = [(e.get("data-from"), e.get("data-to")) for e in edges(render(ETL))]
    assert len(drawn) == len(set(drawn))
    assert set(drawn) == expected
    assert ("transform:customers", "load") in expected  # a topic matches all of its tasks
    assert ("transform:customers", "audit") not in expected  # a task matches only itself


def test_edges_run_right_side_to_left_side_with_an_arrow() -> None:
    root = render(ETL)
    by_task = phase_nodes(root)
    edge = next(e for e in edges(root) if e.get("data-from") == "extract")
    x, y, width, height = box(by_task["extract"])
    tx, ty, _, theight = box(by_task[edge.get("data-to", "")])
    d = edge.get("d", "")
    assert d.startswith(f"M{x + width:g},{y + height / 2:g} C")
    assert d.endswith(f" {tx:g},{ty + theight / 2:g}")
    assert edge.get("marker-end") == "url(#arrow)"
    assert root.find(f"{SVG}defs/{SVG}marker[@id='arrow']") is not None


def test_status_and_pause_classes() -> None:
    phases = [
        phase("bad", status="invalid topic: bad"),
        phase("meh", status="warning: unknown rule key: x"),
        phase("rest"),
        phase("fine"),
        phase("broken", status="invalid rule format: x; warning: retry count"),
    ]
    by_task = phase_nodes(render(phases, paused={"rest"}))
    assert classes(by_task["bad"]) == {"node", "error"}
    assert classes(by_task["meh"]) == {"node", "warning"}
    assert classes(by_task["rest"]) == {"node", "paused"}
    assert classes(by_task["fine"]) == {"node", "ok"}
    assert classes(by_task["broken"]) == {"node", "error"}
    assert "error" in [t.text for t in by_task["bad"].iter(f"{SVG}text")]
    assert "error" not in [t.text for t in by_task["meh"].iter(f"{SVG}text")]
    assert title(by_task["bad"]) == "bad\ninvalid topic: bad"
    assert "paused" in title(by_task["rest"])


def test_colours_are_themeable_classes() -> None:
    markup = workflow_graph(ETL, next_fires={}, zone=UTC)
    style = ET.fromstring(markup).find(f"{SVG}style")
    assert style is not None and style.text
    assert "var(--err,#c62828)" in style.text
    assert ".node.error" in style.text and ".node.paused" in style.text


def test_missing_parents_get_one_ghost_each() -> None:
    phases = [
        phase("root"),
        phase("a", "nowhere", status="parent task not found: nowhere"),
        phase("b", "nowhere", status="parent task not found: nowhere"),
        phase("c", "root:other", status="parent task not found: root:other"),
    ]
    root = render(phases)
    ghosts = {g.get("data-missing"): g for g in nodes(root) if "ghost" in classes(g)}
    assert set(ghosts) == {"nowhere", "root:other"}
    assert texts(ghosts["nowhere"], "name") == ["missing: nowhere"]
    assert all(g.get("data-task") is None for g in ghosts.values())
    dashed = {
        (e.get("data-missing"), e.get("data-to")) for e in edges(root) if "ghost" in classes(e)
    }
    assert dashed == {("nowhere", "a"), ("nowhere", "b"), ("root:other", "c")}
    assert len(phase_nodes(root)) == len(phases)


@pytest.mark.parametrize(
    ("fire", "label"),
    [
        (datetime(2026, 11, 23, 11, 0, tzinfo=UTC), "next Mon 06:00"),  # EST, UTC-5
        (datetime(2026, 7, 6, 10, 0, tzinfo=UTC), "next Mon 06:00"),  # EDT, UTC-4
        (datetime(2026, 11, 23, 3, 30, tzinfo=UTC), "next Sun 22:30"),  # the day before there
        (None, "next —"),
    ],
)
def test_cron_phase_shows_its_next_fire_in_the_zone(fire: datetime | None, label: str) -> None:
    root = render(ETL, next_fires={"extract": fire}, zone=NEW_YORK)
    assert texts(phase_nodes(root)["extract"], "detail") == [label]


def test_details_of_file_and_child_phases() -> None:
    by_task = phase_nodes(render(ETL, next_fires={}, zone=NEW_YORK))
    assert texts(by_task["report"], "detail") == ["on files"]
    assert texts(by_task["load"], "detail") == []


def test_naive_next_fire_is_refused() -> None:
    with pytest.raises(ValueError, match="extract"):
        render(ETL, next_fires={"extract": datetime(2026, 11, 23, 6, 0)})


def test_long_names_are_shortened_but_kept_whole_in_the_title() -> None:
    name = "transform:" + "x" * 40
    node = phase_nodes(render([phase(name)]))[name]
    shown = texts(node, "name")[0]
    assert shown.endswith("…") and len(shown) == NAME_CHARS and name.startswith(shown[:-1])
    assert title(node).startswith(name + "\n")


HOSTILE = ["<script>alert(1)</script>", 'a"b', "x&y", "it's", "ctl\x01char"]


def test_hostile_names_stay_inside_their_attributes_and_text() -> None:
    phases = [phase(name) for name in HOSTILE] + [
        phase("kid", '<b>"missing"&', status='parent task not found: <b>"missing"&')
    ]
    phases = [PhaseRecord(**{**_fields(p), "file_path": "<evil>.toml"}) for p in phases]
    markup = workflow_graph(phases, next_fires={}, zone=UTC, href=lambda t: f"/t?task={t}")
    assert "<script>" not in markup and "<b>" not in markup
    root = ET.fromstring(markup)
    by_task = phase_nodes(root)
    assert set(by_task) == {*HOSTILE[:4], "ctl\ufffdchar", "kid"}
    assert title(by_task["x&y"]).startswith("x&y\n")
    assert texts(by_task['a"b'], "name") == ['a"b']
    ghost = next(g for g in nodes(root) if "ghost" in classes(g))
    assert ghost.get("data-missing") == '<b>"missing"&'
    assert root.get("aria-label") == "dependency graph of <evil>.toml"
    links = {a.get("href") for a in root.iter(f"{SVG}a")}
    assert "/t?task=<script>alert(1)</script>" in links


def _fields(record: PhaseRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in PhaseRecord.__dataclass_fields__}


def test_cycles_are_drawn_as_back_edges() -> None:
    phases = [phase("a", "b"), phase("b", "a"), phase("self", "self")]
    root = render(phases)
    back = {(e.get("data-from"), e.get("data-to")) for e in edges(root) if "back" in classes(e)}
    assert back == {("b", "a"), ("self", "self")}
    assert len(edges(root)) == 3
    assert len(phase_nodes(root)) == 3


def chains(count: int, length: int) -> list[PhaseRecord]:
    return [
        phase(f"c{c}_{i}", f"c{c}_{i - 1}" if i else "")
        for c in range(count)
        for i in range(length)
    ]


def size(root: ET.Element) -> tuple[float, float]:
    width, height = float(root.get("width", "")), float(root.get("height", ""))
    assert root.get("viewBox") == f"0 0 {width:g} {height:g}"
    return width, height


def test_size_grows_with_columns_and_rows_and_nodes_do_not_overlap() -> None:
    small = size(render(chains(1, 3)))
    wider = size(render(chains(1, 10)))
    big_root = render(chains(5, 10))
    big = size(big_root)
    assert wider[0] > small[0] and wider[1] == small[1]
    assert big[0] == wider[0] and big[1] > wider[1]
    boxes = [box(g) for g in nodes(big_root)]
    assert len(boxes) == 50
    for x, y, w, h in boxes:
        assert x >= 0 and y >= 0
        assert x + w <= big[0] and y + h <= big[1]
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in combinations(boxes, 2):
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1


def test_svg_is_labelled_for_assistive_technology() -> None:
    root = render(ETL)
    assert root.tag == f"{SVG}svg"
    assert (root.get("role"), root.get("class")) == ("img", "graph")
    assert root.get("aria-label") == "dependency graph of etl.toml"


def test_href_wraps_each_phase_node_in_a_link() -> None:
    phases = [*ETL, phase("orphan", "gone")]
    root = render(phases, href=lambda task: f"/tasks/{task}")
    linked = {
        g.get("data-task"): a.get("href")
        for a in root.iter(f"{SVG}a")
        for g in a.findall(f"{SVG}g")
    }
    assert linked == {p.task: f"/tasks/{p.task}" for p in phases}
    assert not list(render(ETL).iter(f"{SVG}a"))


def test_no_phases_is_a_small_svg_saying_so() -> None:
    root = render([])
    assert [t.text for t in root.iter(f"{SVG}text")] == ["no phases"]
    width, height = size(root)
    assert width <= 200 and height <= 100
