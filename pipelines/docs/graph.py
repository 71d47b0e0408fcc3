"""The table graph as an SVG picture: one column per layer (bronze, silver, gold, ML), a box per table that
links to its page, an arrow per input (dashed: a foreign-key check reads the table). Pure functions: the
layout is computed from the declarations alone; no JavaScript, no fonts or images to load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from pipelines.config import LAYERS, Settings

COLUMNS = (*LAYERS, "ml")
BOX_W, BOX_H, COL_GAP, ROW_GAP, MARGIN, HEADER = 230, 34, 80, 18, 20, 34
LAYER_COLOURS = {"bronze": "#c8873a", "silver": "#8a96a3", "gold": "#c9a227", "ml": "#6b5fb5"}


@dataclass(frozen=True)
class Node:
    name: str
    column: str
    label: str
    href: str
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    dashed: bool = False


def graph_nodes(
    settings: Settings, model: str | None, page: str = "tables/{name}.html"
) -> tuple[list[Node], list[Edge]]:
    """Nodes (the tables the runner builds, the model and its predictions) and edges, not yet placed."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    predictions = settings.ml.predictions_table
    for name, table in settings.tables.items():
        if table.built_by_runner:
            nodes.append(Node(name, table.layer, name, page.format(name=name)))
            edges += [Edge(dep, name) for dep in table.inputs]
            refs = {c.ref_table for c in table.expectations if c.type == "foreign_key" and c.ref_table}
            edges += [Edge(ref, name, dashed=True) for ref in sorted(refs) if ref not in table.inputs]
    if model:
        nodes.append(Node(f"model:{model}", "ml", f"model {model}", "ml.html"))
        edges.append(Edge(settings.ml.features_table, f"model:{model}"))
    if predictions in settings.tables:
        nodes.append(Node(predictions, "ml", predictions, page.format(name=predictions)))
        edges.append(Edge(f"model:{model}" if model else settings.ml.features_table, predictions))
    known = {n.name for n in nodes}
    return nodes, [e for e in edges if e.source in known and e.target in known]


def layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> list[Node]:
    """Place nodes in their layer's column; within a column, inputs from the same column first (the model
    above its predictions), then by the mean row of their inputs (fewer crossings), then by name."""
    placed: dict[str, Node] = {}
    rows: dict[str, float] = {}
    inputs: dict[str, list[str]] = {}
    for e in edges:
        if not e.dashed:
            inputs.setdefault(e.target, []).append(e.source)
    for col_index, column in enumerate(COLUMNS):
        left = [n for n in nodes if n.column == column]
        row = 0
        while left:
            ready = [n for n in left if not any(s in {m.name for m in left} for s in inputs.get(n.name, []))]
            ready = (
                ready or left
            )  # a cycle inside a column (the plan reports it): place the rest as they come

            def key(n: Node) -> tuple[float, str]:
                seen = [rows[s] for s in inputs.get(n.name, []) if s in rows]
                return (sum(seen) / len(seen) if seen else 0.0, n.name)

            node = min(ready, key=key)
            left.remove(node)
            rows[node.name] = row
            placed[node.name] = Node(
                node.name, node.column, node.label, node.href,
                MARGIN + col_index * (BOX_W + COL_GAP), MARGIN + HEADER + row * (BOX_H + ROW_GAP),
            )  # fmt: skip
            row += 1
    return [placed[n.name] for n in nodes]


def render_svg(nodes: Sequence[Node], edges: Sequence[Edge], href_prefix: str = "") -> str:
    """The placed graph as an inline ``<svg>`` element."""
    by_name: Mapping[str, Node] = {n.name: n for n in nodes}
    height = max((n.y for n in nodes), default=0) + BOX_H + MARGIN
    width = MARGIN * 2 + len(COLUMNS) * BOX_W + (len(COLUMNS) - 1) * COL_GAP + COL_GAP // 2  # room for loops
    out = [
        f'<svg id="table-graph" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="table graph">',
        "<title>Tables and their inputs, bronze to ML</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#6c757d"/></marker></defs>',
    ]
    for i, column in enumerate(COLUMNS):
        x = MARGIN + i * (BOX_W + COL_GAP)
        out.append(
            f'<text class="layer" x="{x + BOX_W / 2:.0f}" y="{MARGIN + 14}" text-anchor="middle" '
            f'font-weight="600" font-size="15" fill="{LAYER_COLOURS[column]}">{column.upper()}</text>'
        )
    for e in edges:
        a, b = by_name[e.source], by_name[e.target]
        x1, y1, x2, y2 = a.x + BOX_W, a.y + BOX_H / 2, b.x, b.y + BOX_H / 2
        if x2 <= x1:  # same column (silver -> silver): a loop on the right-hand side
            bend = x1 + COL_GAP / 2
            path = f"M {x1} {y1:.0f} C {bend:.0f} {y1:.0f}, {bend:.0f} {y2:.0f}, {b.x + BOX_W} {y2:.0f}"
        else:
            mid = (x1 + x2) / 2
            path = f"M {x1} {y1:.0f} C {mid:.0f} {y1:.0f}, {mid:.0f} {y2:.0f}, {x2} {y2:.0f}"
        dash = ' stroke-dasharray="5 4"' if e.dashed else ""
        out.append(
            f'<path class="edge" data-from="{escape(e.source)}" data-to="{escape(e.target)}" d="{path}" '
            f'fill="none" stroke="#9aa3ad" stroke-width="1.4"{dash} marker-end="url(#arrow)"/>'
        )
    for n in nodes:
        colour = LAYER_COLOURS[n.column]
        out.append(
            f'<a class="node" href="{escape(href_prefix + n.href)}" data-table="{escape(n.name)}">'
            f'<rect x="{n.x}" y="{n.y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#fff" stroke="{colour}" '
            f'stroke-width="2"/><text x="{n.x + 10}" y="{n.y + 22}" font-size="13" fill="#212529">'
            f"{escape(n.label)}</text></a>"
        )
    out.append("</svg>")
    return "\n".join(out)


def graph_svg(settings: Settings, model: str | None = None) -> str:
    nodes, edges = graph_nodes(settings, model)
    return render_svg(layout(nodes, edges), edges)


def trend_svg(points: Sequence[tuple[str, int, int]], width: int = 240, height: int = 48) -> str:
    """A bar per run (oldest first) of the share of rows that failed a check: (label, failed, checked).
    Any failure shows as at least a short red bar; a passed run is a green tick on the base line."""
    if not points:
        return ""
    bar = min(14.0, max(2.0, (width - 4) / len(points) - 2))
    parts = [
        f'<svg class="trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="failures per run">',
        f'<line x1="0" y1="{height - 1}" x2="{width}" y2="{height - 1}" stroke="#ced4da"/>',
    ]
    for i, (label, failed, checked) in enumerate(points):
        share = failed / checked if checked else (1.0 if failed else 0.0)
        h = max(6.0, share * (height - 6)) if failed else 2.0
        colour = "#b02a37" if failed else "#1e7e34"
        x = 2 + i * (bar + 2)
        parts.append(
            f'<rect x="{x:.1f}" y="{height - 1 - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{escape(label)}: {failed:,} of {checked:,} rows failed</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts)
