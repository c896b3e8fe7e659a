"""The dependency graph of one workflow file as inline SVG markup.

Pure: the caller passes the file's phases (in file order), their next fire times and the
paused tasks; the result is a string for a page to embed. Edges are the resolver's own
(`Family.children`), so the picture matches what runs; a `dependsOn` that names nothing in
the file gets a dashed "ghost" parent, one per distinct missing name. Everything taken from
the file is escaped: task names are whatever a workflow author wrote.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from workflow.chains import Family
from workflow.layout import Layout, Placed, layered
from workflow.phase import PhaseRecord
from workflow.query import parse_query
from workflow.validate import status_has_error, status_has_warning

NODE_W, NODE_H = 176, 44
COL_W, ROW_H = 220, 60
MARGIN = 24
NAME_CHARS = 23
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_STYLE = """
.graph{font-family:system-ui,sans-serif}
.node .box{fill:var(--node-bg,#fff);stroke:var(--node-border,#78909c);stroke-width:1.5}
.node .name{font-size:12px;font-weight:600;fill:var(--fg,#212121)}
.node .detail{font-size:11px;fill:var(--muted,#616161)}
.node.error .box{stroke:var(--err,#c62828);stroke-width:2.5}
.node .tag rect{fill:var(--err,#c62828)}
.node .tag text{font-size:9px;font-weight:700;fill:var(--on-err,#fff)}
.node.warning .box{stroke:var(--warn,#f9a825);stroke-width:2.5}
.node.paused .box{fill:var(--paused-bg,#f5f5f5);stroke:var(--paused,#9e9e9e);stroke-dasharray:5 3}
.node.paused .name,.node.paused .detail{fill:var(--paused,#9e9e9e)}
.node.ghost .box{fill:none;stroke:var(--muted,#9e9e9e);stroke-dasharray:5 3}
.node.ghost .name{font-weight:400;font-style:italic;fill:var(--muted,#757575)}
.edge{fill:none;stroke:var(--edge,#90a4ae);stroke-width:1.5}
.edge.back,.edge.ghost{stroke-dasharray:5 4}
.edge.back{stroke:var(--back,#8e24aa)}
.arrow{fill:var(--edge,#90a4ae)}
"""


@dataclass(frozen=True, slots=True)
class _Node:
    """One box: a phase, or (with `phase` None) the ghost of a missing parent."""

    key: str
    phase: PhaseRecord | None = None
    missing: str = ""


def workflow_graph(
    phases: Sequence[PhaseRecord],
    *,
    next_fires: Mapping[str, datetime | None],
    zone: tzinfo,
    paused: Collection[str] = (),
    href: Callable[[str], str] | None = None,
) -> str:
    """The SVG of one file's phases: a box per phase, left to right by dependency depth.

    `next_fires[task]` is shown (in `zone`) on cron phases; `paused` tasks are greyed;
    `href(task)`, when given, makes each phase box a link.
    """
    if not phases:
        return _svg(160, 40, "dependency graph: no phases", '<text x="12" y="25">no phases</text>')
    nodes, edges = _nodes_and_edges(phases)
    layout = layered([n.key for n in nodes], edges)
    by_key = {n.key: n for n in nodes}
    parts = [
        _edge_svg(by_key[u], by_key[v], layout, back=(u, v) in layout.back_edges) for u, v in edges
    ]
    for node in nodes:
        place = layout.places[node.key]
        if node.phase is None:
            parts.append(_ghost_svg(node.missing, place))
            continue
        detail = _detail(node.phase, next_fires, zone)
        box = _phase_svg(node.phase, place, detail=detail, paused=node.phase.task in paused)
        parts.append(_linked(box, href(node.phase.task)) if href else box)
    width = 2 * MARGIN + layout.columns * COL_W - (COL_W - NODE_W)
    height = 2 * MARGIN + layout.rows * ROW_H - (ROW_H - NODE_H)
    return _svg(width, height, f"dependency graph of {phases[0].file_path}", "\n".join(parts))


def _nodes_and_edges(phases: Sequence[PhaseRecord]) -> tuple[list[_Node], list[tuple[str, str]]]:
    """Nodes in file order (each ghost just before the first phase missing it) and edges as
    the resolver sees them. Keys are positions, so duplicate task names still get a box each."""
    family = Family(phases)
    key_of = {id(p): f"p{i}" for i, p in enumerate(phases)}
    edges: list[tuple[str, str]] = []
    for phase in phases:
        edges += [(key_of[id(phase)], key_of[id(kid)]) for kid in family.children(phase)]
    has_parent = {child for _, child in edges}
    nodes: list[_Node] = []
    ghosts: dict[str, str] = {}
    for phase in phases:
        key = key_of[id(phase)]
        if phase.depends_on and key not in has_parent:
            if phase.depends_on not in ghosts:
                ghosts[phase.depends_on] = f"g{len(ghosts)}"
                nodes.append(_Node(ghosts[phase.depends_on], missing=phase.depends_on))
            edges.append((ghosts[phase.depends_on], key))
        nodes.append(_Node(key, phase=phase))
    return nodes, edges


def _detail(phase: PhaseRecord, next_fires: Mapping[str, datetime | None], zone: tzinfo) -> str:
    """The second line: when a cron phase fires next, or that it waits on files."""
    rule = parse_query(phase.rule)
    if "cron" in rule:
        when = next_fires.get(phase.task)
        if when is None:
            return "next —"
        if when.tzinfo is None:
            raise ValueError(f"next fire of {phase.task!r} has no time zone: {when}")
        local = when.astimezone(zone)
        return f"next {_DAYS[local.weekday()]} {local:%H:%M}"
    return "on files" if "files" in rule else ""


def _classes(phase: PhaseRecord, *, paused: bool) -> str:
    """Severity first (error beats warning); a paused phase also carries `paused`."""
    if status_has_error(phase.status):
        kinds = ["error"]
    elif status_has_warning(phase.status):
        kinds = ["warning"]
    else:
        kinds = [] if paused else ["ok"]
    return " ".join(["node", *kinds, *(["paused"] if paused else [])])


def _phase_svg(phase: PhaseRecord, place: Placed, *, detail: str, paused: bool) -> str:
    x, y = _origin(place)
    classes = _classes(phase, paused=paused)
    tooltip = f"{phase.task}\n{phase.status or 'ok'}" + ("\n(paused)" if paused else "")
    name = phase.task if len(phase.task) <= NAME_CHARS else phase.task[: NAME_CHARS - 1] + "…"
    parts = [
        f'<g class="{classes}" data-task="{_esc(phase.task)}">',
        f"<title>{_esc(tooltip)}</title>",
        f'<rect class="box" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>',
        f'<text class="name" x="{x + 10}" y="{y + (18 if detail else 27)}">{_esc(name)}</text>',
    ]
    if detail:
        parts.append(f'<text class="detail" x="{x + 10}" y="{y + 35}">{_esc(detail)}</text>')
    if "error" in classes.split():
        tx = x + NODE_W - 40
        parts.append(
            f'<g class="tag"><rect x="{tx}" y="{y - 7}" width="34" height="14" rx="3"/>'
            f'<text x="{tx + 5}" y="{y + 3}">error</text></g>'
        )
    parts.append("</g>")
    return "".join(parts)


def _ghost_svg(missing: str, place: Placed) -> str:
    x, y = _origin(place)
    label = f"missing: {missing}"
    shown = label if len(label) <= NAME_CHARS else label[: NAME_CHARS - 1] + "…"
    return (
        f'<g class="node ghost" data-missing="{_esc(missing)}">'
        f"<title>{_esc(label)}\nno phase of this file matches this dependsOn</title>"
        f'<rect class="box" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
        f'<text class="name" x="{x + 10}" y="{y + 27}">{_esc(shown)}</text></g>'
    )


def _edge_svg(parent: _Node, child: _Node, layout: Layout, *, back: bool) -> str:
    """A cubic Bézier from the parent's right side to the child's left side; a back edge
    (a cycle) arcs above the boxes so that it does not run through them."""
    x1, y1 = _origin(layout.places[parent.key])
    x2, y2 = _origin(layout.places[child.key])
    x1, y1, y2 = x1 + NODE_W, y1 + NODE_H // 2, y2 + NODE_H // 2
    if back:
        lift = 40  # the arc peaks in the gap above the boxes
        d = f"M{x1},{y1} C{x1 + 60},{y1 - lift} {x2 - 60},{y2 - lift} {x2},{y2}"
    else:
        bend = (x2 - x1) // 2
        d = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
    if parent.phase is None:
        ends = f'data-missing="{_esc(parent.missing)}"'
        kind = "edge ghost"
    else:
        ends = f'data-from="{_esc(parent.phase.task)}"'
        kind = "edge back" if back else "edge"
    to = _esc(child.phase.task) if child.phase else ""
    return f'<path class="{kind}" {ends} data-to="{to}" d="{d}" marker-end="url(#arrow)"/>'


def _origin(place: Placed) -> tuple[int, int]:
    return MARGIN + place.column * COL_W, MARGIN + place.row * ROW_H


def _linked(markup: str, url: str) -> str:
    return f'<a href="{_esc(url)}">{markup}</a>'


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" '
        f'aria-label="{_esc(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">\n'
        f"<style>{_STYLE}</style>\n"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path class="arrow" d="M0,0 L10,5 L0,10 z"/></marker></defs>\n'
        f"{body}\n</svg>"
    )


def _esc(text: str) -> str:
    """Escaped for text and attributes; characters XML cannot hold become U+FFFD."""
    return html.escape(_NOT_XML.sub("\ufffd", text), quote=True)
